"""``kaapana search``, ``kaapana tags`` and ``kaapana catalog``: cohorts from the command line.

Queries are the catalog's JSON query format (a string or ``@file.json``); ``-f`` filters are a
shorthand for conditions that are ANDed to it.
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kaapana.auth.projects import ADMIN_PROJECT
from kaapana.catalog.query import condition_from_shorthand, load_json_text, parse_query
from kaapana.cli._common import console, platform_of, print_json, reported_errors
from kaapana.errors import InvalidInput

ProjectOption = Annotated[str, typer.Option(help="Project to search in.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

tags_app = typer.Typer(help="Tags: a project's labels on series (e.g. excluded, reviewed).")
catalog_app = typer.Typer(help="The catalog's search index: rebuild it, list its fields.")


def query_object(query: str | None, filters: list[str], text: str | None) -> dict[str, Any]:
    """The JSON query with the shorthand filters ANDed into its ``where``."""
    obj: Any = {}
    if query:
        if query.startswith("@"):
            path = Path(query[1:])
            try:
                query = path.read_text()
            except OSError as exc:
                raise InvalidInput(f"query file {str(path)!r}: {exc.strerror}") from exc
        obj = load_json_text(query)
        if not isinstance(obj, dict):
            raise InvalidInput(f"a query is a JSON object, got {query[:80]!r}")
    conditions = [condition_from_shorthand(item) for item in filters]
    if obj.get("where") is not None:
        conditions.insert(0, obj["where"])
    if conditions:
        obj["where"] = conditions[0] if len(conditions) == 1 else {"and": conditions}
    if text:
        obj["text"] = text
    return dict(obj)


def search_command(
    ctx: typer.Context,
    query: Annotated[
        str | None, typer.Argument(help="Query as JSON, or @file.json (see docs/catalog.md).")
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "-f", "--filter", help="FIELD OP VALUE, OP one of = != < <= > >= ~ (wildcard) ?"
        ),
    ] = None,
    text: Annotated[str | None, typer.Option(help="Free text (all words, as prefixes).")] = None,
    sort: Annotated[
        list[str] | None, typer.Option(help="Sort field; prefix with - for descending.")
    ] = None,
    project: ProjectOption = ADMIN_PROJECT,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Series per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after this page's cursor.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Search a project's series; prints a table (or JSON with --json) and the next cursor."""
    with reported_errors():
        obj = query_object(query, filters or [], text)
        if sort:
            obj["sort"] = [
                {"field": key.lstrip("-"), "order": "desc" if key.startswith("-") else "asc"}
                for key in sort
            ]
        parsed = parse_query(obj)
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        page = platform.catalog.search(
            project_pk=found.id, query=parsed, limit=limit, cursor=cursor
        )
    if as_json:
        print_json(page.model_dump())
        return
    table = Table("patient", "study date", "modality", "series description", "instances", "tags")
    for hit in page.items:
        table.add_row(
            hit.patient_id,
            hit.study_date,
            hit.modality,
            hit.series_description,
            str(hit.number_of_series_related_instances),
            ", ".join(hit.tags),
        )
    out = console()
    out.print(table)
    if page.next_cursor:
        out.print(f"more: --cursor {page.next_cursor}")


def _change(
    ctx: typer.Context, project: str, tags: list[str], uids: list[str], *, add: bool
) -> None:
    with platform_of(ctx) as platform:
        found = platform.archive.projects.get(project)
        change = platform.catalog.tag(
            project_pk=found.id,
            series_instance_uids=uids,
            add=tags if add else (),
            remove=() if add else tags,
        )
    verb = "added to" if add else "removed from"
    console().print(
        f"{', '.join(change.tags)} {verb} {change.series} series ({change.changed} changes)"
    )


TagsArgument = Annotated[list[str], typer.Argument(help="Tag, then SeriesInstanceUIDs.")]


@tags_app.command("add")
def tags_add(
    ctx: typer.Context, tag_and_series: TagsArgument, project: ProjectOption = ADMIN_PROJECT
) -> None:
    """Tag series: kaapana tags add TAG SERIES_UID..."""
    tag, *uids = tag_and_series
    _change(ctx, project, [tag], uids, add=True)


@tags_app.command("remove")
def tags_remove(
    ctx: typer.Context, tag_and_series: TagsArgument, project: ProjectOption = ADMIN_PROJECT
) -> None:
    """Remove a tag from series: kaapana tags remove TAG SERIES_UID..."""
    tag, *uids = tag_and_series
    _change(ctx, project, [tag], uids, add=False)


@tags_app.command("list")
def tags_list(
    ctx: typer.Context, project: ProjectOption = ADMIN_PROJECT, as_json: JsonOption = False
) -> None:
    """List the project's tags with the number of series carrying each."""
    with platform_of(ctx) as platform:
        counts = platform.catalog.tags(project_pk=platform.archive.projects.get(project).id)
    if as_json:
        print_json([count.model_dump() for count in counts])
        return
    table = Table("tag", "series")
    for count in counts:
        table.add_row(count.tag, str(count.series))
    console().print(table)


@catalog_app.command("reindex")
def reindex(ctx: typer.Context) -> None:
    """Rebuild the search index of every series (after an upgrade, or for data indexed before)."""
    with platform_of(ctx) as platform:
        indexed = platform.catalog.reindex()
    console().print(f"{indexed} series indexed")


@catalog_app.command("fields")
def fields(
    ctx: typer.Context,
    project: ProjectOption = ADMIN_PROJECT,
    prefix: Annotated[str, typer.Option(help="Only fields starting with this.")] = "",
    as_json: JsonOption = False,
) -> None:
    """List the fields a project's series have, with kind, counts and examples."""
    with platform_of(ctx) as platform:
        found = platform.catalog.fields(
            project_pk=platform.archive.projects.get(project).id, prefix=prefix
        )
    if as_json:
        print_json([info.model_dump(mode="json") for info in found])
        return
    table = Table("field", "VR", "kind", "series", "examples")
    for info in found:
        examples = ", ".join(str(example)[:32] for example in info.examples)
        table.add_row(info.field, info.vr or "", info.kind.value, str(info.series), examples)
    console().print(table)


__all__ = ["catalog_app", "search_command", "tags_app"]
