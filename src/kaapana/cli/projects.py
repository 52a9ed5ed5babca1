"""``kaapana projects``: projects and the AE titles that route received data into them."""

from typing import Annotated

import typer
from rich.table import Table

from kaapana.auth.roles import RoleValues
from kaapana.cli._common import console, platform_of, print_json
from kaapana.cli.users import cli_actor

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


@app.command("members")
def members(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List a project's members and their roles."""
    with platform_of(ctx) as platform:
        project = platform.archive.projects.get(name)
        found = platform.auth.users.memberships(project=project)
    rows = [{"username": m.username, "role": m.role.value} for m in found]
    if as_json:
        print_json(rows)
        return
    table = Table("user", "role")
    for row in rows:
        table.add_row(row["username"], row["role"])
    console().print(table)


@app.command("grant")
def grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project name.")],
    username: Annotated[str, typer.Argument(help="User to add or change.")],
    role: Annotated[
        RoleValues, typer.Argument(help="scientist (read, run) or principal_investigator.")
    ],
) -> None:
    """Give a user a role in a project (adds the membership or changes the role)."""
    with platform_of(ctx) as platform:
        project = platform.archive.projects.get(name)
        platform.auth.users.set_role(username, project, role)
        platform.auth.audit.record(
            "membership.set",
            actor=cli_actor(),
            target=f"user:{username}",
            project=name,
            detail={"role": role.value},
        )
    console().print(f"[bold]{username}[/bold] is {role.value} in {name}")


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project name.")],
    username: Annotated[str, typer.Argument(help="Member to remove.")],
) -> None:
    """Remove a user from a project."""
    with platform_of(ctx) as platform:
        project = platform.archive.projects.get(name)
        platform.auth.users.remove_member(username, project)
        platform.auth.audit.record(
            "membership.remove", actor=cli_actor(), target=f"user:{username}", project=name
        )
    console().print(f"[bold]{username}[/bold] removed from {name}")


@app.command("access")
def access(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project name.")],
    calling_ae: Annotated[
        list[str] | None,
        typer.Option(help="Calling AE title admitted over DIMSE (repeatable)."),
    ] = None,
    network: Annotated[
        list[str] | None,
        typer.Option(help="Address or CIDR network admitted over DIMSE (repeatable)."),
    ] = None,
    any_peer: Annotated[
        bool, typer.Option("--any", help="Drop both rules: every peer is admitted again.")
    ] = False,
) -> None:
    """Restrict which DICOM peers may store into or query the project's AE title."""
    clear = (
        frozenset({"allowed_calling_ae_titles", "allowed_networks"}) if any_peer else frozenset()
    )
    with platform_of(ctx) as platform:
        project = platform.archive.projects.update(
            name, allowed_calling_ae_titles=calling_ae, allowed_networks=network, clear=clear
        )
        platform.auth.audit.record(
            "project.update",
            actor=cli_actor(),
            target=f"project:{name}",
            project=name,
            detail={
                "allowed_calling_ae_titles": project.allowed_calling_ae_titles,
                "allowed_networks": project.allowed_networks,
            },
        )
    console().print(
        f"{name}: calling AE titles {project.allowed_calling_ae_titles or 'any'}, "
        f"networks {project.allowed_networks or 'any'}"
    )
