"""The series viewer page: one series of the project, its SEG overlays and its links."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.auth.projects import scope_of
from kaapana.catalog.series_view import series_view
from kaapana.errors import KaapanaError
from kaapana.web.contexts import ViewerPage
from kaapana.web.deps import PageError, PagePrincipal, RendererDep, layout_for, page_project
from kaapana.web.pages.project import ProjectName

router = APIRouter(prefix="/p/{project}", include_in_schema=False)


@router.get("/series/{uid}")
def viewer(
    project: ProjectName,
    uid: Annotated[str, Path(max_length=64)],
    platform: PlatformDep,
    principal: PagePrincipal,
    renderer: RendererDep,
) -> Response:
    found = page_project(platform, principal, project)
    try:
        view = series_view(
            engine=platform.engine, series_instance_uid=uid, projects=scope_of(found)
        )
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
    layout = layout_for(
        platform, principal, section="gallery", project=project, subpath=f"series/{quote(uid)}"
    )
    return renderer.response(ViewerPage(layout=layout, view=view))
