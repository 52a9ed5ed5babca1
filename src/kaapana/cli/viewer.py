"""``kaapana viewer``: the optional OHIF Viewer served at ``/ohif``.

It needs no database: the release lives in its own folder (setting ``ohif_dir``), and a running
``kaapana serve`` picks up an install or removal with its next request.
"""

from typing import Annotated

import typer

from kaapana.cli._common import console, print_json, reported_errors, settings_of
from kaapana.ohif.install import DEFAULT_VERSION, PACKAGE, OhifRelease, install, installed, remove

app = typer.Typer(
    help="The OHIF Viewer at /ohif: fetched from the npm registry into the data folder.",
    no_args_is_help=True,
)


def _describe(release: OhifRelease) -> str:
    return (
        f"OHIF {release.version} installed {release.installed_at} in {release.path} "
        f"(integrity {release.integrity[:23]}…)"
    )


@app.command("install-ohif")
def install_ohif(
    ctx: typer.Context,
    version: Annotated[
        str, typer.Option("--version", help=f"Version of {PACKAGE} on the npm registry.")
    ] = DEFAULT_VERSION,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if this version is installed.")
    ] = False,
) -> None:
    """Download the prebuilt OHIF Viewer with npm (about 50 MB), check it and switch to it.

    Needs npm and the npm registry; a failure leaves the release being served as it was.
    Installing the version already installed does nothing (see --force).
    """
    out = console()
    with reported_errors(), out.status(f"installing {PACKAGE}@{version}") as status:

        def report(step: str) -> None:
            status.update(step)
            out.print(f"[dim]·[/dim] {step}")

        release = install(settings_of(ctx).resolved_ohif_dir, version, force=force, report=report)
    out.print(f"[green]{_describe(release)}[/green]; served at /ohif by `kaapana serve`")


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show whether OHIF is installed, which version and where."""
    folder = settings_of(ctx).resolved_ohif_dir
    release = installed(folder)
    if as_json:
        print_json(
            None
            if release is None
            else {
                "version": release.version,
                "integrity": release.integrity,
                "installed_at": release.installed_at,
                "path": str(release.path),
            }
        )
        return
    if release is None:
        console().print(f"OHIF is not installed in {folder}; `kaapana viewer install-ohif` adds it")
        return
    console().print(_describe(release))


@app.command("remove-ohif")
def remove_ohif(ctx: typer.Context) -> None:
    """Stop serving OHIF at /ohif and delete its files."""
    release = remove(settings_of(ctx).resolved_ohif_dir)
    console().print(
        "OHIF was not installed" if release is None else f"removed OHIF {release.version}"
    )
