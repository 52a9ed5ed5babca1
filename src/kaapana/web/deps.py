"""What every page depends on: the renderer, a signed-in principal, the current project.

A page request without a valid session is redirected to ``/login?next=<where it was going>``;
service errors (a project the caller cannot see, a missing right) become an HTML error page.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from kaapana.api.deps import PlatformDep, optional_principal
from kaapana.api.routes.projects import visible_project
from kaapana.auth.principal import Principal
from kaapana.auth.projects import ADMIN_PROJECT
from kaapana.auth.roles import PermissionValues
from kaapana.db.models import Project
from kaapana.errors import KaapanaError, Unauthorized
from kaapana.ohif.install import installed
from kaapana.platform import Platform
from kaapana.web.contexts import Layout, ProjectLink
from kaapana.web.rendering import Renderer


class LoginRequired(Exception):
    """Raised by a page that needs a session; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url

    @property
    def login_url(self) -> str:
        return "/login?next=" + quote(self.next_url, safe="/")


class PageError(Exception):
    """A caller's mistake on a page (404, 403, 400), rendered as an HTML error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def get_renderer(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.web_renderer
    return renderer


RendererDep = Annotated[Renderer, Depends(get_renderer)]


def session_principal(request: Request, platform: Platform) -> Principal | None:
    """Who is signed in; an expired session counts as nobody (the page offers a new login)."""
    try:
        return optional_principal(request, platform)
    except Unauthorized:
        return None


def page_principal(request: Request, platform: PlatformDep) -> Principal:
    principal = session_principal(request, platform)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def admin_page_principal(principal: PagePrincipal) -> Principal:
    try:
        principal.require_admin()
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
    return principal


AdminPagePrincipal = Annotated[Principal, Depends(admin_page_principal)]


def page_project(platform: Platform, principal: Principal, name: str) -> Project:
    try:
        return visible_project(platform, principal, name, PermissionValues.read)
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc


def visible_projects(platform: Platform, principal: Principal) -> list[Project]:
    return [p for p in platform.archive.projects.list() if principal.sees(p.id)]


def projects_first_to_open(platform: Platform, principal: Principal) -> list[Project]:
    """The visible projects, ``admin`` last: it mixes every project's data."""
    return sorted(
        visible_projects(platform, principal), key=lambda p: (p.name == ADMIN_PROJECT, p.name)
    )


def layout_for(
    platform: Platform,
    principal: Principal,
    *,
    section: str,
    project: str | None = None,
    subpath: str = "",
) -> Layout:
    """The header: the switcher links to the same view (``subpath``) in every other project."""
    links = [
        ProjectLink(name=p.name, url=f"/p/{quote(p.name)}/{subpath}", current=p.name == project)
        for p in visible_projects(platform, principal)
    ]
    return Layout(
        username=principal.username,
        is_admin=principal.is_admin and principal.sees_everything,
        project=project,
        projects=links,
        section=section,
        ohif=installed(platform.settings.resolved_ohif_dir) is not None,
    )


__all__ = [
    "AdminPagePrincipal",
    "LoginRequired",
    "PageError",
    "PagePrincipal",
    "RendererDep",
    "layout_for",
    "page_project",
    "projects_first_to_open",
    "session_principal",
    "visible_projects",
]
