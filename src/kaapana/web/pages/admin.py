"""Administration pages (instance administrators): projects, members, users, nodes, audit, system.

Lists are rendered here from the services; changes go through the REST API from each page's
ES module, so the UI has exactly the rights and validation of ``/api/v1``.
"""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.api.routes.system import system_status
from kaapana.archive.nodes import Nodes
from kaapana.auth.roles import RoleValues
from kaapana.db.models import Project
from kaapana.web.contexts import (
    AuditFilters,
    AuditPage,
    NodeRow,
    NodesAdminPage,
    ProjectAdminPage,
    ProjectRow,
    ProjectsAdminPage,
    SystemPage,
    UserRow,
    UsersAdminPage,
)
from kaapana.web.deps import AdminPagePrincipal, RendererDep, layout_for, page_project

router = APIRouter(prefix="/admin", include_in_schema=False)
AUDIT_PER_PAGE = 50
ROLES = [role.value for role in RoleValues]


def _row(project: Project) -> ProjectRow:
    return ProjectRow(name=project.name, ae_title=project.ae_title, description=project.description)


@router.get("/projects")
def projects(
    platform: PlatformDep, principal: AdminPagePrincipal, renderer: RendererDep
) -> Response:
    page = ProjectsAdminPage(
        layout=layout_for(platform, principal, section="admin/projects"),
        rows=[_row(p) for p in platform.archive.projects.list()],
    )
    return renderer.response(page)


@router.get("/projects/{name}")
def project(
    name: Annotated[str, Path(max_length=64)],
    platform: PlatformDep,
    principal: AdminPagePrincipal,
    renderer: RendererDep,
) -> Response:
    found = page_project(platform, principal, name)
    page = ProjectAdminPage(
        layout=layout_for(platform, principal, section="admin/projects"),
        project=_row(found),
        members=platform.auth.users.memberships(project=found),
        usernames=[u.username for u in platform.auth.users.list()],
        roles=ROLES,
    )
    return renderer.response(page)


@router.get("/users")
def users(platform: PlatformDep, principal: AdminPagePrincipal, renderer: RendererDep) -> Response:
    memberships = platform.auth.users.memberships()
    page = UsersAdminPage(
        layout=layout_for(platform, principal, section="admin/users"),
        rows=[
            UserRow(
                username=u.username,
                display_name=u.display_name,
                is_admin=u.is_admin,
                is_active=u.is_active,
                oidc=u.oidc_subject is not None,
                memberships=[m for m in memberships if m.username == u.username],
            )
            for u in platform.auth.users.list()
        ],
        projects=[p.name for p in platform.archive.projects.list()],
        roles=ROLES,
    )
    return renderer.response(page)


@router.get("/nodes")
def nodes(platform: PlatformDep, principal: AdminPagePrincipal, renderer: RendererDep) -> Response:
    page = NodesAdminPage(
        layout=layout_for(platform, principal, section="admin/nodes"),
        rows=[
            NodeRow(
                name=n.name,
                ae_title=n.ae_title,
                host=n.host,
                port=n.port,
                description=n.description,
            )
            for n in Nodes(platform.engine).list()
        ],
    )
    return renderer.response(page)


def _moment(value: str, field: str) -> datetime | None:
    """A filter bound from a ``datetime-local`` input (taken as UTC) or an ISO 8601 value."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"'{field}' must be a date and time, got {value!r}") from exc
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


Filter = Annotated[str, Query(max_length=255)]


@router.get("/audit")
def audit(
    platform: PlatformDep,
    principal: AdminPagePrincipal,
    renderer: RendererDep,
    actor: Filter = "",
    action: Filter = "",
    project: Filter = "",
    since: Filter = "",
    until: Filter = "",
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """Newest first; the filters and the page position live in the URL."""
    filters = AuditFilters(actor=actor, action=action, project=project, since=since, until=until)
    layout = layout_for(platform, principal, section="admin/audit")
    try:
        bounds = _moment(since, "since"), _moment(until, "until")
    except ValueError as exc:
        page = AuditPage(layout=layout, filters=filters, events=[], older_url=None, error=str(exc))
        return renderer.response(page, status_code=400)
    events = platform.auth.audit.query(
        actor=actor or None,
        action=action or None,
        project=project or None,
        since=bounds[0],
        until=bounds[1],
        limit=AUDIT_PER_PAGE,
        before_id=before_id,
    )
    older = None
    if len(events) == AUDIT_PER_PAGE:
        query = {k: v for k, v in asdict(filters).items() if v}
        older = "/admin/audit?" + urlencode({**query, "before_id": events[-1].id})
    return renderer.response(
        AuditPage(layout=layout, filters=filters, events=events, older_url=older)
    )


@router.get("/system")
def system(platform: PlatformDep, principal: AdminPagePrincipal, renderer: RendererDep) -> Response:
    page = SystemPage(
        layout=layout_for(platform, principal, section="admin/system"),
        status=system_status(platform),
    )
    return renderer.response(page)
