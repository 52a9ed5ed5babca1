"""The sites page (administrators): this installation's place in the federation.

Everything is read here from the federation services; approving, denying, canceling and
editing the policies go through ``/api/v1/federation`` from the page's ES module, so the page
has exactly the rights, checks and audit of the REST API.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from markupsafe import Markup
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.errors import KaapanaError, NotFound
from kaapana.federation.states import FINAL_JOB_STATES, JobStateValues, PeerRoleValues
from kaapana.operators.charts import line_chart
from kaapana.platform import Platform
from kaapana.web.contexts import FederatedRunPage, PeerRow, PendingJob, PolicyRow, SitesPage
from kaapana.web.deps import AdminPagePrincipal, PageError, RendererDep, layout_for

router = APIRouter(include_in_schema=False)
RECENT_JOBS = 50
RECENT_RUNS = 20
MAX_PENDING = 1000


def pending_jobs(platform: Platform, *, project: str | None = None) -> list[PendingJob]:
    """Jobs waiting for a decision, with their dataset's counts and their workflow's policy;
    ``project`` keeps those on datasets it exposes."""
    federation = platform.federation
    jobs = federation.jobs.list(state=JobStateValues.pending_approval, limit=MAX_PENDING)
    if not jobs:  # the usual case, and the home page asks on every visit
        return []
    exposures = {e.name: e for e in federation.policies.exposures()}
    policies = {p.workflow: p for p in federation.policies.list()}
    found = [
        PendingJob(job=job, exposure=exposures.get(job.dataset), policy=policies.get(job.workflow))
        for job in jobs
    ]
    if project is None:
        return found
    return [p for p in found if p.exposure is not None and p.exposure.project == project]


def _installed_hash(platform: Platform, workflow: str) -> str | None:
    try:
        return platform.workflows.registry.get(workflow).definition_hash
    except NotFound:
        return None


@router.get("/sites")
def sites(platform: PlatformDep, principal: AdminPagePrincipal, renderer: RendererDep) -> Response:
    federation = platform.federation
    counts = {**federation.hub.job_counts(), **federation.jobs.counts()}
    peers = federation.sites.list()
    policies = federation.policies.list()
    allowed = {p.workflow for p in policies}
    exposures = federation.policies.exposures()
    exposed = {(e.project, e.dataset) for e in exposures}
    datasets = [
        info
        for project in platform.archive.projects.list()
        for info in platform.datasets.list(project)
        if (info.project, info.name) not in exposed
    ]
    page = SitesPage(
        layout=layout_for(platform, principal, section="sites"),
        site_name=federation.site_name,
        polling=federation.polling,
        orchestrator=next((s.name for s in peers if s.role is PeerRoleValues.orchestrator), None),
        peers=[PeerRow(site=s, jobs=counts.get(s.name, {})) for s in peers],
        pending=pending_jobs(platform),
        jobs=federation.jobs.list(limit=RECENT_JOBS),
        final_states=sorted(FINAL_JOB_STATES),
        exposed_projects={e.name: e.project for e in exposures},
        policies=[PolicyRow(p, _installed_hash(platform, p.workflow)) for p in policies],
        workflows=[w for w in platform.workflows.workflows() if w.name not in allowed],
        exposures=exposures,
        datasets=datasets,
        runs=federation.runs.list(limit=RECENT_RUNS),
        default_max_output_bytes=platform.settings.federation_max_output_bytes,
    )
    return renderer.response(page)


def result_charts(result: dict[str, Any] | None) -> list[Markup]:
    """A training run's rounds as curves (validation Dice per label, local loss); the results of
    other plans are tables of numbers, which the page shows as they are."""
    rounds = (result or {}).get("rounds")
    if not isinstance(rounds, list):
        return []
    dice: dict[str, list[float]] = {}
    loss: list[float] = []
    for entry in rounds:
        for label, value in entry.get("local_validation_dice", {}).items():
            dice.setdefault(label, []).append(float(value))
        if "local_loss" in entry:
            loss.append(float(entry["local_loss"]))
    charts = []
    if dice:
        charts.append(
            line_chart(
                dice,
                title="Validation Dice at the sites (case-weighted mean)",
                x_label="round",
                y_label="Dice",
            )
        )
    if loss:
        charts.append(
            line_chart(
                {"loss": loss},
                title="Local training loss (case-weighted mean)",
                x_label="round",
                y_label="loss",
            )
        )
    return [Markup(chart) for chart in charts]


@router.get("/sites/runs/{run_id}")
def federated_run(
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    platform: PlatformDep,
    principal: AdminPagePrincipal,
    renderer: RendererDep,
) -> Response:
    runs = platform.federation.runs
    try:
        run = runs.get(run_id)
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
    files = runs.global_artifact(run_id)
    page = FederatedRunPage(
        layout=layout_for(platform, principal, section="sites"),
        run=run,
        artifact=[(name, len(data)) for name, data in sorted(files.items())],
        charts=result_charts(run.result),
    )
    return renderer.response(page)
