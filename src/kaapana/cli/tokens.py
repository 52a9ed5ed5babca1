"""``kaapana tokens``: API tokens for scripts, viewers and DICOMweb peers."""

from typing import Annotated

import typer
from rich.table import Table

from kaapana.auth.tokens import is_expired
from kaapana.cli._common import console, error_console, platform_of, print_json
from kaapana.cli.users import cli_actor

app = typer.Typer(help="API tokens: bearer credentials for scripts and DICOMweb clients.")


@app.command("create")
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for (letters, digits, _ . -).")],
    project: Annotated[
        list[str] | None,
        typer.Option("--project", help="Limit to this project (repeatable); default: all."),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Allow storing and changing data.")
    ] = False,
    days: Annotated[float, typer.Option(help="Days until it expires.")] = 90,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Never expires.")] = False,
) -> None:
    """Create a token and print it; it is shown only this once."""
    with platform_of(ctx) as platform:
        user = platform.auth.users.get(username)
        issued = platform.auth.tokens.issue(
            user,
            name=name,
            projects=project,
            can_write=write,
            expires_in_days=None if no_expiry else days,
        )
        platform.auth.audit.record(
            "token.create",
            actor=cli_actor(),
            target=f"token:{issued.token.id}",
            detail={"user": username, "name": name, "projects": project, "can_write": write},
        )
    typer.echo(issued.secret)
    error_console().print(f"token {issued.token.id} for {username}: store it now, it is not kept")


@app.command("list")
def list_(
    ctx: typer.Context,
    username: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List tokens (never their secrets)."""
    with platform_of(ctx) as platform:
        user = platform.auth.users.get(username) if username else None
        tokens = platform.auth.tokens.list(user)
    rows = [
        {
            "id": t.id,
            "user": owner,
            "name": t.name,
            "prefix": t.prefix,
            "projects": t.projects,
            "write": t.can_write,
            "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            "state": "revoked" if t.revoked_at else "expired" if is_expired(t) else "active",
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
        }
        for owner, t in tokens
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "user", "name", "prefix", "projects", "write", "expires", "state")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["user"]),
            str(row["name"]),
            str(row["prefix"]) + "…",
            ", ".join(row["projects"] or ["(all)"]),  # type: ignore[arg-type]
            "yes" if row["write"] else "",
            str(row["expires_at"] or "never"),
            str(row["state"]),
        )
    console().print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context, token_id: Annotated[int, typer.Argument(help="Token id (see list).")]
) -> None:
    """Revoke a token at once."""
    with platform_of(ctx) as platform:
        platform.auth.tokens.revoke(token_id)
        platform.auth.audit.record("token.revoke", actor=cli_actor(), target=f"token:{token_id}")
    console().print(f"token {token_id} revoked")
