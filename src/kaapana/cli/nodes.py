"""``kaapana nodes`` and ``kaapana send``: remote DICOM application entities.

The DICOM client (pynetdicom) is imported by the commands that talk to a node, not when the CLI
starts, so that other commands start sooner.
"""

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from kaapana.archive.importer import iter_file_paths
from kaapana.archive.nodes import Nodes
from kaapana.cli._common import console, platform_of, print_json
from kaapana.errors import InvalidInput

app = typer.Typer(help="Remote DICOM nodes: destinations for send and C-MOVE.")


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Short name to refer to the node.")],
    ae_title: Annotated[str, typer.Option(help="The node's AE title.")],
    host: Annotated[str, typer.Option(help="Host name or IP address.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="DICOM port.")],
    description: Annotated[str, typer.Option(help="Free text.")] = "",
) -> None:
    """Register a node (it becomes a valid C-MOVE destination)."""
    with platform_of(ctx) as platform:
        node = Nodes(platform.engine).add(
            name, ae_title=ae_title, host=host, port=port, description=description
        )
    console().print(
        f"node [bold]{node.name}[/bold] ({node.ae_title}@{node.host}:{node.port}) added"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List registered nodes."""
    with platform_of(ctx) as platform:
        nodes = Nodes(platform.engine).list()
    rows = [
        {
            "name": n.name,
            "ae_title": n.ae_title,
            "host": n.host,
            "port": n.port,
            "description": n.description,
        }
        for n in nodes
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "AE title", "host", "port", "description")
    for row in rows:
        table.add_row(
            row["name"], row["ae_title"], row["host"], str(row["port"]), row["description"]
        )
    console().print(table)


@app.command("remove")
def remove(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Node to remove.")]
) -> None:
    """Remove a node."""
    with platform_of(ctx) as platform:
        Nodes(platform.engine).remove(name)
    console().print(f"node [bold]{name}[/bold] removed")


@app.command("echo")
def echo_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Node to verify.")]
) -> None:
    """C-ECHO a node (exit code 1 if it does not answer)."""
    from kaapana.dicomnet.scu import echo

    with platform_of(ctx) as platform:
        node = Nodes(platform.engine).get(name)
        seconds = echo(node, calling_ae_title=platform.settings.ae_title)
    console().print(f"C-ECHO {name}: success in {seconds * 1000:.1f} ms")


def send_command(
    ctx: typer.Context,
    node_name: Annotated[str, typer.Argument(metavar="NODE", help="Registered destination node.")],
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders to send.", show_default=False)
    ] = None,
    study: Annotated[
        list[str] | None, typer.Option(help="Study Instance UID from the archive (repeatable).")
    ] = None,
    series: Annotated[
        list[str] | None, typer.Option(help="Series Instance UID from the archive (repeatable).")
    ] = None,
) -> None:
    """C-STORE archive studies/series or local files to a node, in their stored transfer syntax."""
    from kaapana.dicomnet.scu import send

    if not (paths or study or series):
        raise typer.BadParameter("give PATH(s), --study or --series")
    with platform_of(ctx) as platform:
        node = Nodes(platform.engine).get(node_name)
        files = list(iter_file_paths(paths or []))
        files += platform.archive.local_paths(
            study_instance_uids=study or [], series_instance_uids=series or []
        )
        if not files:
            raise InvalidInput("nothing to send: no files found")
        with Progress(
            TextColumn("sending to " + node_name),
            BarColumn(),
            MofNCompleteColumn(),
            console=console(),
        ) as progress:
            task = progress.add_task("send", total=len(files))
            report = send(
                node,
                files,
                calling_ae_title=platform.settings.ae_title,
                on_progress=lambda _path, _ok: progress.advance(task),
            )
    out = console()
    out.print(f"sent {report.sent}, failed {len(report.failed)}")
    for path, reason in report.failed:
        out.print(f"[red]failed[/red] {path}: {reason}")
    if report.failed:
        raise typer.Exit(1)
