"""``kaapana datasets`` and ``kaapana series``: cohorts of a project, and deleting series.

Series are named by SeriesInstanceUID, as arguments or one per line in ``--from-file`` (blank
lines and lines starting with ``#`` are skipped), so a list exported from a query or a manifest
can be fed back in.
"""

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kaapana.catalog import DatasetInfo, ManifestFormatValues
from kaapana.cli._common import console, platform_of, print_json, reported_errors
from kaapana.cli.catalog import query_object
from kaapana.cli.users import cli_actor
from kaapana.errors import InvalidInput

app = typer.Typer(help="Datasets: named sets of series in a project (cohorts).")
series_app = typer.Typer(help="Series of a project.")

ProjectOption = Annotated[str, typer.Option("--project", help="Project name.")]
Name = Annotated[str, typer.Argument(help="Dataset name.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
FromFile = Annotated[
    Path | None,
    typer.Option(help="File with one SeriesInstanceUID per line.", show_default=False),
]
Uids = Annotated[list[str] | None, typer.Argument(help="SeriesInstanceUIDs.", show_default=False)]


def _uids(given: list[str] | None, from_file: Path | None) -> list[str]:
    uids = list(given or [])
    if from_file is not None:
        with reported_errors():
            try:
                lines = from_file.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"'--from-file' cannot be read: {from_file}: {exc}") from exc
        uids += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return uids


def _row(info: DatasetInfo) -> dict[str, object]:
    return {
        "project": info.project,
        "name": info.name,
        "kind": info.kind.value,
        "description": info.description,
        "query": info.query,
        "created_at": info.created_at.isoformat(),
        **info.summary.model_dump(),
    }


def _modalities(counts: dict[str, int]) -> str:
    return ", ".join(f"{modality or '?'} {n}" for modality, n in counts.items())


def _show(info: DatasetInfo, as_json: bool) -> None:
    if as_json:
        print_json(_row(info))
        return
    s = info.summary
    console().print(
        f"[bold]{info.name}[/bold] ({info.kind.value}) in {info.project}: {s.patients} patients, "
        f"{s.studies} studies, {s.series} series, {s.instances} instances"
        + (f"; {_modalities(s.modalities)}" if s.modalities else "")
    )


@app.command("list")
def list_(ctx: typer.Context, project: ProjectOption, as_json: AsJson = False) -> None:
    """List a project's datasets with their counts."""
    with platform_of(ctx) as platform:
        found = platform.datasets.list(platform.archive.projects.get(project))
    if as_json:
        print_json([_row(info) for info in found])
        return
    table = Table("name", "kind", "patients", "studies", "series", "instances", "modalities")
    for info in found:
        s = info.summary
        table.add_row(
            info.name,
            info.kind.value,
            str(s.patients),
            str(s.studies),
            str(s.series),
            str(s.instances),
            _modalities(s.modalities),
        )
    console().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Name,
    project: ProjectOption,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Member series to list.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Member series to skip.")] = 0,
    as_json: AsJson = False,
) -> None:
    """Show a dataset's counts and a page of its member series."""
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        info = platform.datasets.get(found, name)
        page = platform.datasets.members(found, name, limit=limit, offset=offset)
    if as_json:
        print_json({**_row(info), "members": page.model_dump()})
        return
    _show(info, as_json=False)
    table = Table("patient", "study date", "modality", "instances", "description", "series UID")
    for m in page.items:
        table.add_row(
            m.patient_id,
            m.study_date,
            m.modality,
            str(m.number_of_instances),
            m.series_description,
            m.series_instance_uid,
        )
    console().print(table)
    console().print(f"series {offset + 1}-{offset + len(page.items)} of {page.total}")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    project: ProjectOption,
    series: Annotated[
        list[str] | None,
        typer.Option("--series", help="SeriesInstanceUID of a member (repeatable)."),
    ] = None,
    from_file: FromFile = None,
    query: Annotated[
        str | None,
        typer.Option(
            help="Catalog query as JSON or @file.json (docs/catalog.md): the dataset is a "
            "snapshot of what it matches now."
        ),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "-f", "--filter", help="Shorthand condition of the query, e.g. 'Modality=CT'."
        ),
    ] = None,
    live: Annotated[
        bool, typer.Option(help="Keep the query instead: members are what it matches when read.")
    ] = False,
    description: Annotated[str, typer.Option(help="What the dataset is for.")] = "",
    as_json: AsJson = False,
) -> None:
    """Create a dataset from series of the project, or from a catalog query."""
    uids = _uids(series, from_file)
    by_query = query is not None or bool(filters)
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        common = {"description": description, "actor": cli_actor()}
        if by_query and uids:
            raise InvalidInput("give series or a query (--query, -f), not both")
        if by_query:
            wanted = query_object(query, filters or [], None)
            if live:
                info = platform.datasets.create_live(found, name, query=wanted, **common)
            else:
                info = platform.datasets.create_snapshot(found, name, query=wanted, **common)
        elif live:
            raise InvalidInput("'--live' keeps a query: give --query or -f")
        else:
            info = platform.datasets.create(found, name, series_instance_uids=uids, **common)
    _show(info, as_json)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Name,
    project: ProjectOption,
    uids: Uids = None,
    from_file: FromFile = None,
) -> None:
    """Add series of the project to a dataset."""
    wanted = _uids(uids, from_file)
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        added = platform.datasets.add(found, name, wanted, actor=cli_actor())
    console().print(f"{added} series added to {name}")


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Name,
    project: ProjectOption,
    uids: Uids = None,
    from_file: FromFile = None,
) -> None:
    """Take series out of a dataset (they stay in the project)."""
    wanted = _uids(uids, from_file)
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        removed = platform.datasets.remove(found, name, wanted, actor=cli_actor())
    console().print(f"{removed} series taken out of {name}")


@app.command("rename")
def rename(
    ctx: typer.Context,
    name: Name,
    new_name: Annotated[str, typer.Argument(help="New dataset name.")],
    project: ProjectOption,
) -> None:
    """Rename a dataset."""
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        platform.datasets.update(found, name, new_name=new_name, actor=cli_actor())
    console().print(f"dataset {name} is now {new_name}")


@app.command("describe")
def describe(
    ctx: typer.Context,
    name: Name,
    description: Annotated[str, typer.Argument(help="The new description.")],
    project: ProjectOption,
) -> None:
    """Set a dataset's description."""
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        platform.datasets.update(found, name, description=description, actor=cli_actor())
    console().print(f"dataset {name} described")


@app.command("delete")
def delete(ctx: typer.Context, name: Name, project: ProjectOption) -> None:
    """Delete a dataset (its series stay in the project and the archive)."""
    with platform_of(ctx) as platform:
        platform.datasets.delete(platform.archive.projects.get(project), name, actor=cli_actor())
    console().print(f"dataset {name} deleted")


@app.command("manifest")
def manifest(
    ctx: typer.Context,
    name: Name,
    project: ProjectOption,
    format: Annotated[
        ManifestFormatValues, typer.Option("--format", help="csv, or json with instances.")
    ] = ManifestFormatValues.csv,
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Export a dataset's manifest: one row per series (JSON: with instances and sha256)."""
    with platform_of(ctx) as platform:
        chunks = platform.datasets.manifest(
            platform.archive.projects.get(project), name, format=format, actor=cli_actor()
        )
        if output is None:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return
        with output.open("w", encoding="utf-8", newline="") as file:
            file.writelines(chunks)
    console().print(f"manifest written to {output}")


@series_app.command("delete")
def delete_series(
    ctx: typer.Context,
    project: ProjectOption,
    uids: Uids = None,
    from_file: FromFile = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete series from a project, and from the archive where no other project holds them."""
    wanted = _uids(uids, from_file)
    if not yes:
        typer.confirm(
            f"Delete {len(wanted)} series from project {project}? Series no other project "
            "holds are removed from the archive for good",
            abort=True,
        )
    with platform_of(ctx) as platform:
        removal = platform.series_deletion.delete(
            platform.archive.projects.get(project), wanted, actor=cli_actor()
        )
    console().print(
        f"{removal.series_unlinked} series taken out of {project}; {removal.series_deleted} "
        f"deleted from the archive ({removal.instances_deleted} instances)"
    )
