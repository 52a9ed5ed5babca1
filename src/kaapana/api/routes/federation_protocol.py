"""The federation protocol, called by participants with their federation token (never by
users): poll, report status, fetch a job's input, upload outputs and logs, all sealed."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from kaapana.api.deps import PlatformDep, client_address
from kaapana.errors import PayloadTooLarge, Unauthorized
from kaapana.federation.hub import MAX_WAIT_SECONDS

router = APIRouter(prefix="/federation/protocol", tags=["federation protocol"])
JobId = Annotated[str, Path(max_length=64)]
_SEALED = "application/octet-stream"


def peer_site(request: Request, platform: PlatformDep) -> str:
    """The participant whose token the request carries; failures are audited."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the federation protocol needs a participant's Bearer token")
        return platform.federation.sites.authenticate(token.strip())
    except Unauthorized as exc:
        platform.auth.audit.record_access(
            "federation.auth",
            actor="anonymous",
            target=request.url.path,
            outcome="failure",
            address=client_address(request),
            detail={"reason": exc.detail},
        )
        raise


PeerSite = Annotated[str, Depends(peer_site)]


class PollRequest(BaseModel):
    site: str = Field("", max_length=64, description="The participant's own site name.")
    datasets: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    active: list[str] = Field(default_factory=list, max_length=10_000)
    wait: float = Field(0, ge=0, le=MAX_WAIT_SECONDS)


class PollResponse(BaseModel):
    jobs: list[dict[str, Any]]
    cancel: list[str]
    logs: list[str]
    models: list[str]


def _names_and_counts(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only names and counts are kept of what a site says it exposes."""
    keep = ("name", "patients", "studies", "series")
    return [{key: d[key] for key in keep if key in d} for d in datasets]


@router.post("/poll", operation_id="federation_poll")
def poll(
    site: PeerSite, platform: PlatformDep, body: Annotated[PollRequest, Body()]
) -> PollResponse:
    """New jobs for the site (waits up to ``wait`` seconds for one), which of its active jobs
    to cancel or send logs of, and which jobs bring it a final model."""
    federation = platform.federation
    federation.sites.report_datasets(site, _names_and_counts(body.datasets))
    answer = federation.hub.poll(site, active=body.active, wait=body.wait)
    return PollResponse(
        jobs=answer.jobs, cancel=answer.cancel, logs=answer.logs, models=answer.models
    )


class StatusReport(BaseModel):
    state: str = Field(max_length=24)
    detail: str = Field("", max_length=4096)


class StatusAnswer(BaseModel):
    state: str


@router.post("/jobs/{job_id}/status", operation_id="federation_report_status")
def report_status(
    job_id: JobId, site: PeerSite, platform: PlatformDep, body: Annotated[StatusReport, Body()]
) -> StatusAnswer:
    state = platform.federation.hub.report(site, job_id, state=body.state, detail=body.detail)
    return StatusAnswer(state=state)


@router.get("/jobs/{job_id}/input", operation_id="federation_job_input")
def job_input(job_id: JobId, site: PeerSite, platform: PlatformDep) -> Response:
    return Response(platform.federation.hub.input(site, job_id), media_type=_SEALED)


@router.get("/jobs/{job_id}/model", operation_id="federation_job_model")
def job_model(job_id: JobId, site: PeerSite, platform: PlatformDep) -> Response:
    """The run's final model offered with the job, sealed, with its provenance."""
    return Response(platform.federation.hub.model(site, job_id), media_type=_SEALED)


@router.post("/jobs/{job_id}/model", operation_id="federation_report_model", status_code=204)
def report_model(
    job_id: JobId, site: PeerSite, platform: PlatformDep, body: Annotated[StatusReport, Body()]
) -> None:
    """``registered`` or ``refused`` (with the reason) for the offered model."""
    platform.federation.hub.model_report(site, job_id, state=body.state, detail=body.detail)


async def _sealed_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"a sealed upload is at most {limit} bytes")
    return bytes(body)


def _upload_limit(platform: Any) -> int:
    # A binary Fernet token: the plain outputs, the envelope's header, padding and MAC.
    return int(platform.settings.federation_max_output_bytes) + 65536


class UploadAnswer(BaseModel):
    received_bytes: int


@router.post("/jobs/{job_id}/outputs", operation_id="federation_upload_outputs")
async def upload_outputs(
    job_id: JobId, request: Request, site: PeerSite, platform: PlatformDep
) -> UploadAnswer:
    body = await _sealed_body(request, _upload_limit(platform))
    size = await run_in_threadpool(
        platform.federation.hub.receive_outputs,
        site,
        job_id,
        body,
        address=client_address(request),
    )
    return UploadAnswer(received_bytes=size)


@router.post("/jobs/{job_id}/logs", operation_id="federation_upload_logs", status_code=204)
async def upload_logs(
    job_id: JobId, request: Request, site: PeerSite, platform: PlatformDep
) -> None:
    body = await _sealed_body(request, _upload_limit(platform))
    await run_in_threadpool(platform.federation.hub.receive_logs, site, job_id, body)
