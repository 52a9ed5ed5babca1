"""Run pages of one project: the list, and one run with its DAG, tasks, logs and results."""

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.auth.projects import scope_of
from kaapana.auth.roles import PermissionValues
from kaapana.errors import KaapanaError
from kaapana.web.contexts import RunPage, RunsPage
from kaapana.web.deps import PageError, PagePrincipal, RendererDep, layout_for, page_project

router = APIRouter(prefix="/p/{project}/runs", include_in_schema=False)
ProjectName = Annotated[str, Path(max_length=64)]
RUNS_SHOWN = 100


@router.get("")
def runs(
    project: ProjectName, platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep
) -> Response:
    found = page_project(platform, principal, project)
    page = RunsPage(
        layout=layout_for(platform, principal, section="runs", project=project, subpath="runs"),
        runs=platform.workflows.list_runs(scope=scope_of(found), limit=RUNS_SHOWN),
    )
    return renderer.response(page)


@router.get("/{run_id}")
def run(
    project: ProjectName,
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    platform: PlatformDep,
    principal: PagePrincipal,
    renderer: RendererDep,
) -> Response:
    """A run of another project is not found here, even for those who may see it there."""
    found = page_project(platform, principal, project)
    try:
        detail = platform.workflows.get_run(run_id, scope=scope_of(found))
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
    page = RunPage(
        layout=layout_for(platform, principal, section="runs", project=project, subpath="runs"),
        run=detail,
        can_write=principal.allows(detail.project_pk, PermissionValues.write),
    )
    return renderer.response(page)
