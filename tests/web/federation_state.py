"""A site in the middle of a federation, made through the federation services: an orchestrator
it polls (which sends it jobs with a hostile requester), a participant of its own (which reports
a hostile dataset name), a manual-approval policy and an exposed dataset of project A."""

from kaapana.federation.keys import new_enrolment_secret
from kaapana.federation.statistics import STATS_NAME
from kaapana.platform import Platform
from tests.web.conftest import HOSTILE_NAME, series_of

WORKFLOW = "federated-statistics"
PENDING = ("job-approve", "job-deny")


def offer(platform: Platform, job_id: str) -> None:
    """A job as the orchestrator ``central`` offers it, held for the data owner's decision."""
    installed = platform.workflows.registry.get(WORKFLOW).definition_hash
    document = {
        "job_id": job_id,
        "workflow": WORKFLOW,
        "definition_hash": installed,
        "dataset": "cohort",
        "outputs": [STATS_NAME],
        "requester": HOSTILE_NAME,
        "params": {},
    }
    view = platform.federation.jobs.receive(document, orchestrator="central")
    assert view is not None and view.state == "pending_approval", view


def federate(platform: Platform) -> None:
    federation = platform.federation
    project = platform.archive.projects.get("A")
    platform.datasets.create(
        project, "cohort", series_instance_uids=series_of(platform, "A"), actor="admin"
    )
    federation.policies.allow(WORKFLOW, approval="manual", actor="owner")
    federation.policies.expose(project="A", dataset="cohort")
    federation.sites.add_orchestrator(
        "central", url="http://127.0.0.1:9", secret=new_enrolment_secret()
    )
    federation.sites.add_participant("hospital-b")
    federation.sites.add_participant("hospital-c")
    federation.sites.report_datasets(
        "hospital-b", [{"name": HOSTILE_NAME, "patients": 1, "studies": 1, "series": 2}]
    )
    federation.sites.report_datasets("hospital-c", [{"name": "partial"}])  # no counts
    for job_id in PENDING:
        offer(platform, job_id)
