"""Runs: start a workflow on a dataset, series or query; follow, cancel, retry, rerun; logs and
artifacts. Reading needs read access to the run's project, changing it write access."""

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from kaapana.api.deps import CurrentPrincipal, PlatformDep, client_address
from kaapana.api.routes.datasets import attachment
from kaapana.auth.principal import Principal
from kaapana.auth.roles import PermissionValues
from kaapana.errors import Forbidden
from kaapana.platform import Platform
from kaapana.workflows.views import ArtifactView, RunDetailView, RunView

router = APIRouter(prefix="/runs", tags=["runs"])
_MAX_ID = 2**31 - 1
RunId = Annotated[int, Path(ge=1, le=_MAX_ID, description="Run id.")]
_CHUNK = 1 << 20


class RunCreate(BaseModel):
    workflow: str = Field(max_length=128)
    project: str = Field(max_length=64)
    dataset: str | None = Field(None, max_length=64, description="Run on this dataset's series.")
    series: list[str] | None = Field(
        None, max_length=100_000, description="Run on these Series Instance UIDs."
    )
    query: dict[str, Any] | None = Field(None, description="Run on what this catalog query finds.")
    params: dict[str, Any] = Field(default_factory=dict, description="Workflow parameters.")


class RunDiff(BaseModel):
    a: int
    b: int
    differences: list[dict[str, Any]]


def _writable(platform: Platform, principal: Principal, run_id: int) -> RunDetailView:
    run = platform.workflows.get_run(run_id, scope=principal.scope)
    principal.require(run.project_pk, PermissionValues.write, what=f"run {run_id}")
    return run


def _audit(
    platform: Platform, request: Request, principal: Principal, action: str, run: RunView
) -> None:
    platform.auth.audit.record(
        action,
        actor=principal.username,
        target=f"run:{run.id}",
        project=run.project,
        address=client_address(request),
        detail={"workflow": run.workflow, "definition_hash": run.definition_hash},
    )


def _may_start(platform: Platform, principal: Principal, project_pk: int, workflow: str) -> None:
    """Beyond write access: what the workflow needs (``manage`` for one that deletes data; an
    administrator for a service workflow, the platform's own work)."""
    if platform.workflows.registry.get(workflow).service and principal.scope is not None:
        raise Forbidden(f"workflow {workflow!r} is a service of the platform: administrators only")
    permission = platform.workflows.permission(workflow)
    if permission is not PermissionValues.write:
        principal.require(project_pk, permission, what=f"project of workflow {workflow!r}")


def _write_access(principal: Principal) -> Callable[[int, str], None]:
    """For the other projects a run stores into (e.g. de-identify's target project)."""

    def require(project_pk: int, name: str) -> None:
        principal.require(project_pk, PermissionValues.write, what=f"project {name!r}")

    return require


@router.post("", operation_id="create_run", status_code=201)
def create_run(
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[RunCreate, Body()],
) -> RunDetailView:
    project = platform.archive.projects.get(body.project)
    principal.require(project.id, PermissionValues.write, what=f"project {body.project!r}")
    _may_start(platform, principal, project.id, body.workflow)
    run = platform.workflows.start_run(
        project_pk=project.id,
        workflow=body.workflow,
        params=body.params,
        dataset=body.dataset,
        series=body.series,
        query=body.query,
        created_by=principal.username,
        authorize=_write_access(principal),
    )
    _audit(platform, request, principal, "run.create", run)
    return run


@router.get("", operation_id="list_runs")
def list_runs(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    project: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    services: Annotated[
        bool,
        Query(
            description="Also the platform's service runs (series-media, one per arriving "
            "series); administrators only, ignored for others."
        ),
    ] = False,
) -> list[RunView]:
    project_pk = None
    if project is not None:
        found = platform.archive.projects.get(project)
        principal.require(found.id, PermissionValues.read, what=f"project {project!r}")
        project_pk = found.id
    return platform.workflows.list_runs(
        scope=principal.scope, project_pk=project_pk, limit=limit, services=services
    )


@router.get("/diff", operation_id="diff_runs")
def diff_runs(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    a: Annotated[int, Query(ge=1, le=_MAX_ID)],
    b: Annotated[int, Query(ge=1, le=_MAX_ID)],
) -> RunDiff:
    differences = platform.workflows.diff(a, b, scope=principal.scope)
    return RunDiff(a=a, b=b, differences=differences)


@router.get("/{run_id}", operation_id="get_run")
def get_run(run_id: RunId, platform: PlatformDep, principal: CurrentPrincipal) -> RunDetailView:
    return platform.workflows.get_run(run_id, scope=principal.scope)


@router.post("/{run_id}/cancel", operation_id="cancel_run")
def cancel_run(
    run_id: RunId, request: Request, platform: PlatformDep, principal: CurrentPrincipal
) -> RunDetailView:
    _writable(platform, principal, run_id)
    run = platform.workflows.cancel(run_id)
    _audit(platform, request, principal, "run.cancel", run)
    return run


@router.post("/{run_id}/retry", operation_id="retry_run")
def retry_run(
    run_id: RunId, request: Request, platform: PlatformDep, principal: CurrentPrincipal
) -> RunDetailView:
    """Run the failed, canceled and upstream-failed tasks again."""
    original = _writable(platform, principal, run_id)
    _may_start(platform, principal, original.project_pk, original.workflow)
    run = platform.workflows.retry(run_id)
    _audit(platform, request, principal, "run.retry", run)
    return run


@router.post("/{run_id}/rerun", operation_id="rerun_run", status_code=201)
def rerun_run(
    run_id: RunId, request: Request, platform: PlatformDep, principal: CurrentPrincipal
) -> RunDetailView:
    """A new run of the same workflow definition on the same inputs with the same parameters."""
    original = _writable(platform, principal, run_id)
    _may_start(platform, principal, original.project_pk, original.workflow)
    run = platform.workflows.rerun(
        run_id, created_by=principal.username, authorize=_write_access(principal)
    )
    _audit(platform, request, principal, "run.create", run)
    return run


@router.get(
    "/{run_id}/tasks/{task_id}/log",
    operation_id="get_task_log",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def get_task_log(
    run_id: RunId,
    task_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    platform: PlatformDep,
    principal: CurrentPrincipal,
    attempt: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
    follow: Annotated[bool, Query(description="Stream until the attempt has ended.")] = False,
) -> StreamingResponse:
    """stdout, stderr and the operator's logger of one attempt (default: the latest)."""
    engine = platform.workflows
    scope = principal.scope
    if follow:
        chunks = engine.follow_log(run_id, task_id, attempt=attempt, scope=scope)
    else:
        path = engine.log_path(run_id, task_id, attempt=attempt, scope=scope)
        chunks = _read(path) if path.exists() else iter(())
    return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")


def _read(path: Any) -> Iterator[bytes]:
    with path.open("rb") as log_file:
        while chunk := log_file.read(_CHUNK):
            yield chunk


@router.get("/{run_id}/artifacts", operation_id="list_artifacts")
def list_artifacts(
    run_id: RunId, platform: PlatformDep, principal: CurrentPrincipal
) -> list[ArtifactView]:
    return platform.workflows.artifacts(run_id, scope=principal.scope)


@router.get(
    "/{run_id}/artifacts/{name:path}",
    operation_id="download_artifact",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_artifact(
    run_id: RunId,
    name: Annotated[str, Path(max_length=1024)],
    platform: PlatformDep,
    principal: CurrentPrincipal,
) -> StreamingResponse:
    view, stream = platform.workflows.open_artifact(run_id, name, scope=principal.scope)

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/json" if name.endswith(".json") else "application/octet-stream",
        headers={
            "Content-Length": str(view.size),
            "Content-Disposition": attachment(name.rsplit("/", 1)[-1]),
            "ETag": f'"{view.sha256}"',
        },
    )
