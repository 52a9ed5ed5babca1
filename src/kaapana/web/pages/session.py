"""The login page and the way in: ``/`` sends a signed-in user to a project's home."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from starlette.responses import RedirectResponse, Response

from kaapana.api.deps import PlatformDep
from kaapana.web.contexts import LoginPage, NoProjectPage
from kaapana.web.deps import PagePrincipal, RendererDep, layout_for, visible_projects
from kaapana.web.security import safe_next

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_page(
    platform: PlatformDep,
    renderer: RendererDep,
    next_url: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> Response:
    page = LoginPage(
        layout=None,
        next_url=safe_next(next_url),
        oidc_enabled=platform.settings.oidc_client_id is not None,
    )
    return renderer.response(page)


@router.get("/")
def root(platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep) -> Response:
    """The user's first project (``admin`` last: it mixes every project's data)."""
    projects = sorted(
        visible_projects(platform, principal), key=lambda p: (p.name == "admin", p.name)
    )
    if not projects:
        layout = layout_for(platform, principal, section="home")
        return renderer.response(NoProjectPage(layout=layout))
    return RedirectResponse(f"/p/{quote(projects[0].name)}/", status_code=303)


__all__ = ["router"]
