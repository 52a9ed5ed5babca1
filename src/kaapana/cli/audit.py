"""``kaapana audit``: read the audit trail."""

from typing import Annotated

import typer
from rich.table import Table

from kaapana.cli._common import console, platform_of, print_json


def audit_command(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only this user (or cli:<name>).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. login, retrieve, store, delete.")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Only events of this project.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest events to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the audit trail, newest first: who did what, to what, when, from where."""
    with platform_of(ctx) as platform:
        events = platform.auth.audit.query(actor=actor, action=action, project=project, limit=limit)
    rows = [
        {
            "id": e.id,
            "time": e.time.isoformat(timespec="seconds") + "Z",
            "actor": e.actor,
            "action": e.action,
            "outcome": e.outcome,
            "target": e.target,
            "project": e.project,
            "address": e.address,
            "detail": e.detail,
        }
        for e in events
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("time (UTC)", "actor", "action", "outcome", "target", "project", "address")
    for row in rows:
        table.add_row(
            *(str(row[key] or "") for key in ("time", "actor", "action", "outcome", "target")),
            str(row["project"] or ""),
            str(row["address"] or ""),
        )
    console().print(table)
