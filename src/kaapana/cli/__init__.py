"""The ``kaapana`` command."""

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from kaapana import __version__
from kaapana.cli import (
    audit,
    catalog,
    data,
    datasets,
    nodes,
    projects,
    serve,
    tokens,
    users,
    viewer,
)
from kaapana.cli import federation as federation_commands
from kaapana.cli import models as model_commands
from kaapana.cli import workflows as workflow_commands
from kaapana.cli._common import error_console
from kaapana.config import Settings

app = typer.Typer(
    name="kaapana",
    help="Medical-imaging research platform: DICOM archive, cohorts, workflows, federation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kaapana {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Data folder (database, storage). Env: KAAPANA_DATA_DIR.", show_default=False
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Index database URL. Env: KAAPANA_DATABASE_URL.", show_default=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Settings come from KAAPANA_* variables and kaapana.toml; these options override them."""
    try:
        settings = Settings()
        settings = settings.with_overrides(data_dir=data_dir, database_url=database_url)
    except ValidationError as exc:
        error_console().print(f"[red]error:[/red] invalid settings: {exc}")
        raise typer.Exit(2) from exc
    ctx.ensure_object(dict)["settings"] = settings


app.command(name="serve")(serve.serve_command)
app.command(name="import")(data.import_command)
app.command(name="demo")(data.demo_command)
app.command(name="check")(data.check_command)
app.command(name="send")(nodes.send_command)
app.add_typer(nodes.app, name="nodes")
app.add_typer(projects.app, name="projects")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.command(name="audit")(audit.audit_command)
app.add_typer(datasets.app, name="datasets")
app.add_typer(datasets.series_app, name="series")
app.add_typer(workflow_commands.app, name="workflows")
app.command(name="run")(workflow_commands.run_command)
app.add_typer(workflow_commands.runs_app, name="runs")
app.add_typer(workflow_commands.triggers_app, name="triggers")
app.command(name="search")(catalog.search_command)
app.add_typer(catalog.tags_app, name="tags")
app.add_typer(catalog.catalog_app, name="catalog")
app.add_typer(model_commands.app, name="models")
app.add_typer(federation_commands.sites_app, name="sites")
app.add_typer(federation_commands.app, name="federation")
app.add_typer(viewer.app, name="viewer")


def main() -> None:
    app()


__all__ = ["app", "main"]
