"""The login page and the way in: ``/`` sends a signed-in user to a project's home."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from kaapana.api.deps import PlatformDep
from kaapana.web.contexts import LoginPage, NoProjectPage
from kaapana.web.deps import (
    PagePrincipal,
    RendererDep,
    layout_for,
    projects_first_to_open,
    session_principal,
)
from kaapana.web.security import safe_next

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_page(
    request: Request,
    platform: PlatformDep,
    renderer: RendererDep,
    next_url: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> Response:
    """The login form; someone already signed in goes straight on to ``next``."""
    target = safe_next(next_url)
    if session_principal(request, platform) is not None:
        return RedirectResponse(target, status_code=303)
    page = LoginPage(
        layout=None,
        next_url=target,
        oidc_enabled=platform.settings.oidc_client_id is not None,
    )
    return renderer.response(page)


@router.get("/")
def root(platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep) -> Response:
    """The user's first project."""
    projects = projects_first_to_open(platform, principal)
    if not projects:
        layout = layout_for(platform, principal, section="home")
        return renderer.response(NoProjectPage(layout=layout))
    return RedirectResponse(f"/p/{quote(projects[0].name)}/", status_code=303)


__all__ = ["router"]
