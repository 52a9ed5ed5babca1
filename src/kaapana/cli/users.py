"""``kaapana users``: local accounts, for administrators at the console."""

import getpass
from typing import Annotated

import typer
from rich.table import Table

from kaapana.cli._common import console, platform_of, print_json
from kaapana.platform import Platform

app = typer.Typer(help="Users: local accounts and administrators.")


def cli_actor() -> str:
    """Who acted, for the audit trail: the operating-system user at the console."""
    return f"cli:{getpass.getuser()}"


def _new_password(password: str | None) -> str:
    if password is not None:
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _audit(platform: Platform, action: str, username: str, **detail: object) -> None:
    platform.auth.audit.record(action, actor=cli_actor(), target=f"user:{username}", detail=detail)


@app.command("add")
def add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
    password: Annotated[
        str | None, typer.Option(help="Password (prompted when omitted).", show_default=False)
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Instance administrator.")] = False,
    display_name: Annotated[str, typer.Option(help="Full name shown in the UI.")] = "",
    oidc_only: Annotated[
        bool, typer.Option("--oidc-only", help="No password: signs in through OIDC only.")
    ] = False,
) -> None:
    """Create a user."""
    secret = None if oidc_only else _new_password(password)
    with platform_of(ctx) as platform:
        user = platform.auth.users.create(
            username, password=secret, is_admin=admin, display_name=display_name
        )
        _audit(platform, "user.create", user.username, is_admin=admin)
    console().print(f"user [bold]{user.username}[/bold] created")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List users with their project roles."""
    with platform_of(ctx) as platform:
        users = platform.auth.users.list()
        memberships = platform.auth.users.memberships()
    roles: dict[str, list[str]] = {}
    for m in memberships:
        roles.setdefault(m.username, []).append(f"{m.project}:{m.role.value}")
    rows = [
        {
            "username": u.username,
            "display_name": u.display_name,
            "admin": u.is_admin,
            "active": u.is_active,
            "roles": roles.get(u.username, []),
            "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
        }
        for u in users
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("username", "name", "admin", "active", "roles", "last login")
    for row in rows:
        table.add_row(
            str(row["username"]),
            str(row["display_name"]),
            "yes" if row["admin"] else "",
            "yes" if row["active"] else "no",
            ", ".join(row["roles"]),  # type: ignore[arg-type]
            str(row["last_login_at"] or ""),
        )
    console().print(table)


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
    password: Annotated[
        str | None, typer.Option(help="New password (prompted when omitted).", show_default=False)
    ] = None,
) -> None:
    """Set a user's password; the user's open login sessions end."""
    secret = _new_password(password)
    with platform_of(ctx) as platform:
        user = platform.auth.users.update(username, password=secret)
        platform.auth.sessions.close_all(user.id)
        _audit(platform, "user.password", username)
    console().print(f"password of [bold]{username}[/bold] changed")


@app.command("set")
def set_(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
    admin: Annotated[
        bool | None, typer.Option("--admin/--no-admin", help="Grant or take administrator rights.")
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="Deactivated users cannot sign in or use tokens."),
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Full name shown in the UI.")] = None,
) -> None:
    """Change a user's flags or name."""
    with platform_of(ctx) as platform:
        user = platform.auth.users.update(
            username, is_admin=admin, is_active=active, display_name=display_name
        )
        if active is False:
            platform.auth.sessions.close_all(user.id)
        _audit(platform, "user.update", username, is_admin=admin, is_active=active)
    console().print(f"user [bold]{username}[/bold] updated")


@app.command("remove")
def remove(
    ctx: typer.Context, username: Annotated[str, typer.Argument(help="Login name.")]
) -> None:
    """Delete a user with its memberships, tokens and sessions (the audit trail stays)."""
    with platform_of(ctx) as platform:
        platform.auth.users.delete(username)
        _audit(platform, "user.delete", username)
    console().print(f"user [bold]{username}[/bold] removed")
