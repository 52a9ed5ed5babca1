"""Projects and their members; managed by principal investigators (members) and admins."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, Field

from kaapana.api.deps import AdminPrincipal, CurrentPrincipal, PlatformDep, client_address
from kaapana.auth.principal import Principal
from kaapana.auth.roles import PermissionValues, RoleValues
from kaapana.db.models import Project
from kaapana.errors import NotFound
from kaapana.platform import Platform

router = APIRouter(prefix="/projects", tags=["projects"])
ProjectName = Annotated[str, Path(max_length=64, description="Project name.")]


class ProjectPublic(BaseModel):
    name: str
    ae_title: str | None
    description: str
    allowed_calling_ae_titles: list[str] | None
    allowed_networks: list[str] | None
    role: str | None


class ProjectCreate(BaseModel):
    name: str = Field(max_length=64)
    ae_title: str | None = Field(None, max_length=16)
    description: str = Field("", max_length=1024)


class ProjectUpdate(BaseModel):
    description: str | None = Field(None, max_length=1024)
    ae_title: str | None = Field(None, max_length=16)
    allowed_calling_ae_titles: list[str] | None = Field(
        None, description="Calling AE titles admitted over DIMSE; [] admits none, null any."
    )
    allowed_networks: list[str] | None = Field(
        None, description="Addresses/CIDR networks admitted over DIMSE; null admits any."
    )


class Member(BaseModel):
    username: str
    project: str
    role: RoleValues


class MemberUpdate(BaseModel):
    role: RoleValues


def _public(project: Project, principal: Principal) -> ProjectPublic:
    role = principal.roles.get(project.id)
    return ProjectPublic(
        name=project.name,
        ae_title=project.ae_title,
        description=project.description,
        allowed_calling_ae_titles=project.allowed_calling_ae_titles,
        allowed_networks=project.allowed_networks,
        role=role.value if role else None,
    )


def visible_project(
    platform: Platform, principal: Principal, name: str, permission: PermissionValues
) -> Project:
    """The named project if the caller holds ``permission`` there; 404 when it cannot see it."""
    project = platform.archive.projects.find(name)
    if project is None:
        raise NotFound(f"project {name!r} not found")
    principal.require(project.id, permission, what=f"project {name!r}")
    return project


@router.get("", operation_id="list_projects")
def list_projects(platform: PlatformDep, principal: CurrentPrincipal) -> list[ProjectPublic]:
    """The projects the caller may see."""
    return [_public(p, principal) for p in platform.archive.projects.list() if principal.sees(p.id)]


@router.post("", operation_id="create_project", status_code=201)
def create_project(
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[ProjectCreate, Body()],
) -> ProjectPublic:
    """Create a project (admins)."""
    project = platform.archive.projects.create(
        body.name, ae_title=body.ae_title, description=body.description
    )
    platform.auth.audit.record(
        "project.create",
        actor=principal.username,
        target=f"project:{project.name}",
        project=project.name,
        address=client_address(request),
    )
    return _public(project, principal)


@router.get("/{name}", operation_id="get_project")
def get_project(
    name: ProjectName, platform: PlatformDep, principal: CurrentPrincipal
) -> ProjectPublic:
    return _public(visible_project(platform, principal, name, PermissionValues.read), principal)


@router.patch("/{name}", operation_id="update_project")
def update_project(
    name: ProjectName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[ProjectUpdate, Body()],
) -> ProjectPublic:
    """Change description and DIMSE access rules (PIs); the AE title only admins may change."""
    visible_project(platform, principal, name, PermissionValues.manage)
    changes = body.model_dump(exclude_unset=True)
    if "ae_title" in changes:
        principal.require_admin()
    clear = frozenset(key for key, value in changes.items() if value is None)
    project = platform.archive.projects.update(
        name, **{k: v for k, v in changes.items() if v is not None}, clear=clear
    )
    platform.auth.audit.record(
        "project.update",
        actor=principal.username,
        target=f"project:{name}",
        project=name,
        address=client_address(request),
        detail=changes,
    )
    return _public(project, principal)


@router.get("/{name}/members", operation_id="list_members")
def list_members(
    name: ProjectName, platform: PlatformDep, principal: CurrentPrincipal
) -> list[Member]:
    project = visible_project(platform, principal, name, PermissionValues.read)
    return [
        Member(username=m.username, project=m.project, role=m.role)
        for m in platform.auth.users.memberships(project=project)
    ]


@router.put("/{name}/members/{username}", operation_id="set_member")
def set_member(
    name: ProjectName,
    username: Annotated[str, Path(max_length=64)],
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[MemberUpdate, Body()],
) -> Member:
    """Add a member or change a member's role (PIs of the project, admins)."""
    project = visible_project(platform, principal, name, PermissionValues.manage)
    member = platform.auth.users.set_role(username, project, body.role)
    platform.auth.audit.record(
        "membership.set",
        actor=principal.username,
        target=f"user:{username}",
        project=name,
        address=client_address(request),
        detail={"role": body.role.value},
    )
    return Member(username=member.username, project=member.project, role=member.role)


@router.delete("/{name}/members/{username}", operation_id="remove_member", status_code=204)
def remove_member(
    name: ProjectName,
    username: Annotated[str, Path(max_length=64)],
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
) -> None:
    project = visible_project(platform, principal, name, PermissionValues.manage)
    platform.auth.users.remove_member(username, project)
    platform.auth.audit.record(
        "membership.remove",
        actor=principal.username,
        target=f"user:{username}",
        project=name,
        address=client_address(request),
    )
