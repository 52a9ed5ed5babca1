"""Federation administration, for admins: sites, this site's policies, exposed datasets and
received jobs (participant), and federated runs (orchestrator)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, Field

from kaapana.api.deps import AdminPrincipal, PlatformDep, client_address
from kaapana.api.routes.datasets import attachment
from kaapana.auth.principal import Principal
from kaapana.errors import InvalidInput, NotFound
from kaapana.federation.participant import SiteJobView
from kaapana.federation.policies import ExposureView, PolicyView
from kaapana.federation.runs import FederatedRunView
from kaapana.federation.sites import SiteView
from kaapana.federation.states import ApprovalValues, PeerRoleValues
from kaapana.platform import Platform

router = APIRouter(prefix="/federation", tags=["federation"])
Name = Annotated[str, Path(max_length=128)]
JobId = Annotated[str, Path(max_length=64)]
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _audit(
    platform: Platform,
    request: Request,
    principal: Principal,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    platform.auth.audit.record(
        action,
        actor=principal.username,
        target=target,
        address=client_address(request),
        detail=detail,
    )


class ThisSite(BaseModel):
    name: str
    orchestrator: str | None
    participants: list[str]
    polling: bool


@router.get("/site", operation_id="get_federation_site")
def this_site(platform: PlatformDep, _admin: AdminPrincipal) -> ThisSite:
    federation = platform.federation
    orchestrator = federation.sites.orchestrator()
    return ThisSite(
        name=federation.site_name,
        orchestrator=orchestrator.name if orchestrator else None,
        participants=federation.sites.participants(),
        polling=federation.polling,
    )


class SiteCreate(BaseModel):
    name: str = Field(max_length=64)
    role: PeerRoleValues = Field(
        description="`participant`: register a site that polls this orchestrator (answers its "
        "enrolment secret once); `orchestrator`: register the orchestrator this site polls."
    )
    url: str = Field("", max_length=1024, description="The orchestrator's base URL.")
    secret: str = Field("", max_length=256, description="The orchestrator's enrolment secret.")
    verify_tls: bool = True
    pinned_sha256: str = Field("", max_length=95)


class SiteCreated(BaseModel):
    site: SiteView
    secret: str | None = Field(
        None, description="The enrolment secret of a new participant, shown only now."
    )


@router.get("/sites", operation_id="list_federation_sites")
def list_sites(platform: PlatformDep, _admin: AdminPrincipal) -> list[SiteView]:
    return platform.federation.sites.list()


@router.post("/sites", operation_id="create_federation_site", status_code=201)
def create_site(
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[SiteCreate, Body()],
) -> SiteCreated:
    sites = platform.federation.sites
    if body.role is PeerRoleValues.participant:
        enrolled = sites.add_participant(body.name)
        created = SiteCreated(site=enrolled.site, secret=enrolled.secret)
    else:
        if not body.url or not body.secret:
            raise InvalidInput("an orchestrator needs 'url' and 'secret'")
        site = sites.add_orchestrator(
            body.name,
            url=body.url,
            secret=body.secret,
            verify_tls=body.verify_tls,
            pinned_sha256=body.pinned_sha256,
        )
        created = SiteCreated(site=site)
        platform.federation.peers_changed()
    _audit(
        platform,
        request,
        principal,
        "federation.site.add",
        f"site:{body.name}",
        {"role": body.role.value, "url": created.site.url},
    )
    return created


@router.get("/sites/{name}", operation_id="get_federation_site_by_name")
def get_site(name: Name, platform: PlatformDep, _admin: AdminPrincipal) -> SiteView:
    return platform.federation.sites.get(name)


@router.delete("/sites/{name}", operation_id="delete_federation_site", status_code=204)
def delete_site(
    name: Name, request: Request, platform: PlatformDep, principal: AdminPrincipal
) -> None:
    platform.federation.sites.remove(name)
    platform.federation.peers_changed()
    _audit(platform, request, principal, "federation.site.remove", f"site:{name}")


# -- participant: policies, exposed datasets, jobs ------------------------------------------


class PolicyUpdate(BaseModel):
    approval: ApprovalValues = ApprovalValues.manual
    definition_hash: str | None = Field(
        None, max_length=64, description="Pinned definition hash; default: the installed one."
    )
    max_output_bytes: int | None = Field(None, ge=1, le=2**62)
    allow_pixel_data: bool = False
    share_logs: bool = False


@router.get("/policies", operation_id="list_federation_policies")
def list_policies(platform: PlatformDep, _admin: AdminPrincipal) -> list[PolicyView]:
    return platform.federation.policies.list()


@router.put("/policies/{name}", operation_id="set_federation_policy")
def set_policy(
    name: Name,
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[PolicyUpdate, Body()],
) -> PolicyView:
    policy = platform.federation.policies.allow(
        name,
        approval=body.approval,
        actor=principal.username,
        definition_hash=body.definition_hash,
        max_output_bytes=body.max_output_bytes,
        allow_pixel_data=body.allow_pixel_data,
        share_logs=body.share_logs,
    )
    _audit(
        platform,
        request,
        principal,
        "federation.policy.set",
        f"workflow:{name}",
        {
            "definition_hash": policy.definition_hash,
            "approval": policy.approval.value,
            "allow_pixel_data": policy.allow_pixel_data,
        },
    )
    return policy


@router.delete("/policies/{name}", operation_id="delete_federation_policy", status_code=204)
def delete_policy(
    name: Name, request: Request, platform: PlatformDep, principal: AdminPrincipal
) -> None:
    platform.federation.policies.revoke(name)
    _audit(platform, request, principal, "federation.policy.revoke", f"workflow:{name}")


class ExposureCreate(BaseModel):
    project: str = Field(max_length=64)
    dataset: str = Field(max_length=64)
    name: str | None = Field(None, max_length=64, description="Name the orchestrator sees.")


@router.get("/datasets", operation_id="list_federation_datasets")
def list_exposed(platform: PlatformDep, _admin: AdminPrincipal) -> list[ExposureView]:
    return platform.federation.policies.exposures()


@router.post("/datasets", operation_id="expose_federation_dataset", status_code=201)
def expose(
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[ExposureCreate, Body()],
) -> ExposureView:
    exposed = platform.federation.policies.expose(
        project=body.project, dataset=body.dataset, name=body.name
    )
    _audit(
        platform,
        request,
        principal,
        "federation.dataset.expose",
        f"dataset:{body.dataset}",
        {"project": body.project, "name": exposed.name},
    )
    return exposed


@router.delete("/datasets/{name}", operation_id="unexpose_federation_dataset", status_code=204)
def unexpose(
    name: Name, request: Request, platform: PlatformDep, principal: AdminPrincipal
) -> None:
    platform.federation.policies.unexpose(name)
    _audit(platform, request, principal, "federation.dataset.unexpose", f"exposed:{name}")


class Decision(BaseModel):
    reason: str = Field("", max_length=1024)


@router.get("/jobs", operation_id="list_federation_jobs")
def list_jobs(
    platform: PlatformDep,
    _admin: AdminPrincipal,
    state: Annotated[str | None, Query(max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SiteJobView]:
    """Jobs received from the orchestrator; ``state=pending_approval`` lists those waiting."""
    return platform.federation.jobs.list(state=state, limit=limit)


@router.get("/jobs/{job_id}", operation_id="get_federation_job")
def get_job(job_id: JobId, platform: PlatformDep, _admin: AdminPrincipal) -> SiteJobView:
    return platform.federation.jobs.get(job_id)


@router.post("/jobs/{job_id}/approve", operation_id="approve_federation_job")
def approve_job(job_id: JobId, platform: PlatformDep, principal: AdminPrincipal) -> SiteJobView:
    return platform.federation.jobs.approve(job_id, actor=principal.username)


@router.post("/jobs/{job_id}/deny", operation_id="deny_federation_job")
def deny_job(
    job_id: JobId,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[Decision | None, Body()] = None,
) -> SiteJobView:
    reason = body.reason if body else ""
    return platform.federation.jobs.deny(job_id, actor=principal.username, reason=reason)


@router.post("/jobs/{job_id}/cancel", operation_id="cancel_federation_job")
def cancel_job(
    job_id: JobId,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[Decision | None, Body()] = None,
) -> SiteJobView:
    reason = body.reason if body else ""
    return platform.federation.jobs.cancel(job_id, actor=principal.username, reason=reason)


# -- orchestrator: federated runs -----------------------------------------------------------


class FederatedRunCreate(BaseModel):
    workflow: str = Field(
        max_length=128, description="A federated plan, e.g. federated-statistics."
    )
    dataset: str = Field(max_length=64, description="The exposed dataset name at every site.")
    sites: list[str] | None = Field(None, max_length=1000, description="Default: all.")
    rounds: int | None = Field(None, ge=1, le=10_000)
    min_sites: int | None = Field(None, ge=1)
    site_timeout: float = Field(
        3600.0, gt=0, le=30 * 86400, description="Seconds a site has per round."
    )
    params: dict[str, Any] = Field(default_factory=dict)


class PlanPublic(BaseModel):
    name: str
    workflow: str
    description: str
    default_rounds: int


@router.get("/plans", operation_id="list_federated_plans")
def list_plans(platform: PlatformDep, _admin: AdminPrincipal) -> list[PlanPublic]:
    return [
        PlanPublic(
            name=p.name,
            workflow=p.workflow,
            description=p.description,
            default_rounds=p.default_rounds,
        )
        for p in platform.federation.plans.all()
    ]


@router.get("/runs", operation_id="list_federated_runs")
def list_runs(
    platform: PlatformDep,
    _admin: AdminPrincipal,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FederatedRunView]:
    return platform.federation.runs.list(limit=limit)


@router.post("/runs", operation_id="create_federated_run", status_code=201)
def create_run(
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[FederatedRunCreate, Body()],
) -> FederatedRunView:
    return platform.federation.runs.start(
        body.workflow,
        dataset=body.dataset,
        actor=principal.username,
        sites=body.sites,
        rounds=body.rounds,
        min_sites=body.min_sites,
        site_timeout=body.site_timeout,
        params=body.params,
    )


@router.get("/runs/{run_id}", operation_id="get_federated_run")
def get_run(run_id: RunId, platform: PlatformDep, _admin: AdminPrincipal) -> FederatedRunView:
    return platform.federation.runs.get(run_id)


class ArtifactFile(BaseModel):
    name: str
    size: int


@router.get("/runs/{run_id}/artifact", operation_id="list_federated_run_artifact")
def list_global_artifact(
    run_id: RunId, platform: PlatformDep, _admin: AdminPrincipal
) -> list[ArtifactFile]:
    """The files of the run's current global artifact (after its last aggregated round)."""
    files = platform.federation.runs.global_artifact(run_id)
    return [ArtifactFile(name=name, size=len(data)) for name, data in sorted(files.items())]


@router.get(
    "/runs/{run_id}/artifact/{name}",
    operation_id="get_federated_run_artifact_file",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_global_artifact_file(
    run_id: RunId,
    name: Annotated[str, Path(max_length=255)],
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
) -> Response:
    files = platform.federation.runs.global_artifact(run_id)
    if name not in files:
        raise NotFound(f"federated run {run_id} has no file {name!r} in its global artifact")
    _audit(
        platform,
        request,
        principal,
        "federation.run.download",
        f"federated-run:{run_id}",
        {"file": name},
    )
    return Response(
        files[name],
        media_type="application/octet-stream",
        headers={"Content-Disposition": attachment(name)},
    )


@router.post("/runs/{run_id}/cancel", operation_id="cancel_federated_run")
def cancel_run(run_id: RunId, platform: PlatformDep, principal: AdminPrincipal) -> FederatedRunView:
    return platform.federation.runs.cancel(run_id, actor=principal.username)


@router.post(
    "/runs/{run_id}/jobs/{job_id}/logs", operation_id="request_federated_job_logs", status_code=202
)
def request_logs(
    run_id: RunId, job_id: JobId, platform: PlatformDep, principal: AdminPrincipal
) -> None:
    """Ask the job's site for its logs; they arrive with its next poll (if it shares them)."""
    platform.federation.runs.get(run_id)
    platform.federation.runs.request_logs(job_id, actor=principal.username)
