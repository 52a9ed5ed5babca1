"""``kaapana serve``.

The server's modules (HTTP, DICOM) are imported when the command runs, not when the CLI starts:
every other command, `kaapana import` above all, starts ~0.2 s sooner without them.
"""

import logging
from typing import Annotated

import typer

from kaapana.cli._common import (
    announce_admin_password,
    console,
    reported_errors,
    settings_of,
)
from kaapana.config import Settings


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Bind address (default 127.0.0.1).", show_default=False)
    ] = None,
    dicom_port: Annotated[
        int | None, typer.Option(help="DICOM port (default 11112; 0 = any free port).")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="HTTP port (default 8080; 0 = any free port).")
    ] = None,
    ae_title: Annotated[str | None, typer.Option(help="AE title of the SCP.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="DICOM receiver processes (0 = one per CPU core).")
    ] = None,
) -> None:
    """Run the DICOM SCP (echo, store, find, move, get) and the HTTP server until Ctrl-C."""
    from kaapana.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    with reported_errors():
        settings = settings_of(ctx).with_overrides(
            host=host,
            dicom_port=dicom_port,
            http_port=http_port,
            ae_title=ae_title,
            dicom_workers=workers,
        )
        serve(settings, on_ready=_announce)


def _announce(settings: Settings, password: str | None) -> None:
    from kaapana.ohif.install import installed
    from kaapana.server import receiver_count

    out = console()
    out.print(
        f"DICOM SCP [bold]{settings.ae_title}[/bold] on {settings.host}:{settings.dicom_port} "
        f"({receiver_count(settings)} receiver process(es))"
    )
    scheme = "https" if settings.tls_certfile else "http"
    out.print(
        f"HTTP on {scheme}://{settings.host}:{settings.http_port}  "
        "(UI: /, DICOMweb: /dicomweb, API docs: /api/docs, health: /healthz)"
    )
    release = installed(settings.resolved_ohif_dir)
    if release is not None:
        out.print(f"OHIF Viewer {release.version} at /ohif")
    announce_admin_password(password)
    out.print(f"data in {settings.data_dir.resolve()}; Ctrl-C stops")
