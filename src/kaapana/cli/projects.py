"""``kaapana projects``: projects and the AE titles that route received data into them."""

from typing import Annotated

import typer
from rich.table import Table

from kaapana.cli._common import console, platform_of, print_json

app = typer.Typer(help="Projects: who sees which data; each may own a DICOM AE title.")


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project name (letters, digits, _ . -).")],
    ae_title: Annotated[
        str | None, typer.Option(help="Called AE title that stores into this project.")
    ] = None,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
) -> None:
    """Create a project."""
    with platform_of(ctx) as platform:
        project = platform.archive.projects.create(name, ae_title=ae_title, description=description)
    console().print(f"project [bold]{project.name}[/bold] created")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List projects with their AE titles."""
    with platform_of(ctx) as platform:
        projects = platform.archive.projects.list()
    rows = [
        {"name": p.name, "ae_title": p.ae_title or "", "description": p.description}
        for p in projects
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "AE title", "description")
    for row in rows:
        table.add_row(row["name"], row["ae_title"], row["description"])
    console().print(table)
