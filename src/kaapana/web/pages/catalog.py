"""The catalog's pages of one project: gallery, dashboard, datasets and a dataset's members.

The gallery and the dashboard are shells the scripts fill from ``/api/v1/search`` and
``/api/v1/facets``; the datasets pages are rendered here, from the same ``Datasets`` service the
REST API uses.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.auth.roles import PermissionValues
from kaapana.catalog.datasets import DatasetInfo
from kaapana.db.models import Project
from kaapana.errors import KaapanaError
from kaapana.platform import Platform
from kaapana.web.contexts import DashboardPage, DatasetPage, DatasetsPage, GalleryPage
from kaapana.web.deps import PageError, PagePrincipal, RendererDep, layout_for, page_project
from kaapana.web.pages.project import ProjectName, paging

router = APIRouter(prefix="/p/{project}", include_in_schema=False)
MEMBERS_PER_PAGE = 60


@router.get("/gallery")
def gallery(
    project: ProjectName, platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep
) -> Response:
    found = page_project(platform, principal, project)
    page = GalleryPage(
        layout=layout_for(
            platform, principal, section="gallery", project=project, subpath="gallery"
        ),
        can_write=principal.allows(found.id, PermissionValues.write),
        can_delete=principal.allows(found.id, PermissionValues.manage),
        datasets=platform.datasets.names(found),
        workflows=[w.name for w in platform.workflows.workflows()],
    )
    return renderer.response(page)


@router.get("/dashboard")
def dashboard(
    project: ProjectName, platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep
) -> Response:
    page_project(platform, principal, project)
    layout = layout_for(
        platform, principal, section="dashboard", project=project, subpath="dashboard"
    )
    return renderer.response(DashboardPage(layout=layout))


@router.get("/datasets")
def datasets(
    project: ProjectName, platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep
) -> Response:
    found = page_project(platform, principal, project)
    page = DatasetsPage(
        layout=layout_for(
            platform, principal, section="datasets", project=project, subpath="datasets"
        ),
        rows=platform.datasets.list(found),
    )
    return renderer.response(page)


def _dataset(platform: Platform, project: Project, name: str) -> DatasetInfo:
    try:
        return platform.datasets.get(project, name)
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc


@router.get("/datasets/{name}")
def dataset(
    project: ProjectName,
    name: Annotated[str, Path(max_length=64)],
    platform: PlatformDep,
    principal: PagePrincipal,
    renderer: RendererDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    found = page_project(platform, principal, project)
    info = _dataset(platform, found, name)
    members = platform.datasets.members(found, name, limit=MEMBERS_PER_PAGE, offset=offset)
    page = DatasetPage(
        layout=layout_for(
            platform, principal, section="datasets", project=project, subpath="datasets"
        ),
        dataset=info,
        members=members.items,
        paging=paging(
            path=f"/p/{quote(project)}/datasets/{quote(name, safe='')}",
            offset=offset,
            limit=MEMBERS_PER_PAGE,
            total=members.total,
            shown=len(members.items),
        ),
        can_write=principal.allows(found.id, PermissionValues.write),
    )
    return renderer.response(page)
