"""Pages of one project, under ``/p/<project>/``: home and the studies list."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.archive.browse import list_studies
from kaapana.archive.counts import count_archive
from kaapana.auth.projects import scope_of
from kaapana.web.contexts import HomePage, PageLinks, StudiesPage
from kaapana.web.deps import PagePrincipal, RendererDep, layout_for, page_project
from kaapana.web.pages.sites import pending_jobs
from kaapana.workflows.states import ACTIVE_RUN_STATES

router = APIRouter(prefix="/p/{project}", include_in_schema=False)
ProjectName = Annotated[str, Path(max_length=64)]
RECENT_STUDIES = 8
STUDIES_PER_PAGE = 50
RECENT_RUNS = 100  # the queued and running ones among these are shown


@router.get("/")
def home(
    project: ProjectName, platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep
) -> Response:
    found = page_project(platform, principal, project)
    scope = scope_of(found)
    page = HomePage(
        layout=layout_for(platform, principal, section="home", project=project),
        counts=count_archive(platform.engine, projects=scope),
        recent=list_studies(platform.engine, projects=scope, limit=RECENT_STUDIES).items,
        active_runs=[
            run
            for run in platform.workflows.list_runs(scope=scope, limit=RECENT_RUNS)
            if run.state in ACTIVE_RUN_STATES
        ],
        pending_approvals=len(
            pending_jobs(platform, project=None if scope is None else found.name)
        ),
    )
    return renderer.response(page)


def paging(*, path: str, offset: int, limit: int, total: int, shown: int) -> PageLinks:
    """Links to the neighbouring pages; the offset lives in the URL so each page is a link."""

    def link(to: int) -> str:
        return f"{path}?{urlencode({'offset': to})}" if to else path

    return PageLinks(
        first=offset + 1 if shown else 0,
        last=offset + shown,
        total=total,
        previous_url=link(max(offset - limit, 0)) if offset else None,
        next_url=link(offset + limit) if offset + shown < total else None,
    )


@router.get("/studies")
def studies(
    project: ProjectName,
    platform: PlatformDep,
    principal: PagePrincipal,
    renderer: RendererDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    scope = scope_of(page_project(platform, principal, project))
    found = list_studies(platform.engine, projects=scope, limit=STUDIES_PER_PAGE, offset=offset)
    page = StudiesPage(
        layout=layout_for(
            platform, principal, section="studies", project=project, subpath="studies"
        ),
        studies=found.items,
        paging=paging(
            path=f"/p/{project}/studies",
            offset=offset,
            limit=STUDIES_PER_PAGE,
            total=found.total,
            shown=len(found.items),
        ),
    )
    return renderer.response(page)
