"""Federated runs as engine runs at the orchestrator: the central workflow's gated task
dispatches each round, waits without a worker, aggregates on a Dask worker (its log and the run
manifest in the engine), fails a round short of sites, cancels with its federated run and
resumes after the orchestrator stopped. The sites answer through the hub as the protocol's
endpoints do."""

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from kaapana.config import Settings
from kaapana.federation.aggregation import FederatedPlan, Files
from kaapana.federation.central import central_name
from kaapana.federation.envelope import seal
from kaapana.federation.keys import derive_keys
from kaapana.federation.runs import FederatedRunView
from kaapana.platform import Platform
from kaapana.workflows import ModeValues, Step, TaskContext, Workflow
from tests.helpers import wait_until

PLAN = "federated-count"
SITES = ("site-a", "site-b")


def count_series(ctx: TaskContext) -> None:
    """The sites' local workflow (never run here: the sites' uploads are made by the test)."""


COUNT = Workflow(
    name=PLAN,
    version="1",
    federated_outputs=("count.json",),
    steps=[Step(name="count", operator=count_series, mode=ModeValues.per_run)],
)


class CountSum:
    """Adds up the sites' counts onto the broadcast running total."""

    def initial(self, params: Mapping[str, Any]) -> Files:
        return {"count.json": b'{"series": 0}'}

    def aggregate(
        self, *, round: int, params: Mapping[str, Any], current: Files, outputs: Mapping[str, Files]
    ) -> Files:
        total = json.loads(current["count.json"])["series"]
        total += sum(json.loads(files["count.json"])["series"] for files in outputs.values())
        return {"count.json": json.dumps({"round": round, "series": total}).encode()}

    def summary(self, current: Files) -> dict[str, Any]:
        summary: dict[str, Any] = json.loads(current["count.json"])
        return summary

    def broadcast(self, current: Files) -> Files:
        return current


class Orchestrator:
    def __init__(self, settings: Settings, secrets: dict[str, str] | None = None) -> None:
        self.platform = Platform(settings)
        self.platform.workflows.registry.add(COUNT, source="test")
        federation = self.platform.federation
        federation.plans.add(FederatedPlan(name=PLAN, workflow=PLAN, aggregator=CountSum()))
        self.secrets = secrets or {s: federation.sites.add_participant(s).secret for s in SITES}
        federation.serve()

    def run(self, run_pk: int) -> FederatedRunView:
        return self.platform.federation.runs.get(run_pk)

    def wait_jobs(self, run_pk: int, round: int) -> dict[str, str]:
        wait_until(
            lambda: any(j.round == round for j in self.run(run_pk).jobs), 60, f"round {round}"
        )
        return {j.site: j.job_id for j in self.run(run_pk).jobs if j.round == round}

    def deliver(self, site: str, job_id: str, series: int) -> None:
        key = derive_keys(self.secrets[site]).fernet_key
        files = {"count.json": json.dumps({"series": series}).encode()}
        body = seal(key, job_id=job_id, kind="outputs", files=files)
        self.platform.federation.hub.receive_outputs(site, job_id, body, address="test")

    def wait_end(self, run_pk: int) -> FederatedRunView:
        wait_until(lambda: self.run(run_pk).state != "running", 120, f"federated run {run_pk}")
        return self.run(run_pk)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(site_name="central", dask_workers=1, max_parallel_tasks=1)


@pytest.fixture
def orchestrator(settings: Settings) -> Iterator[Orchestrator]:
    made = Orchestrator(settings)
    yield made
    made.platform.close()


def test_rounds_run_as_an_engine_run_that_waits_without_a_worker(
    orchestrator: Orchestrator,
) -> None:
    platform = orchestrator.platform
    engine = platform.workflows
    started = platform.federation.runs.start(PLAN, dataset="cohort", actor="admin", rounds=2)
    assert started.run_id is not None
    jobs = orchestrator.wait_jobs(started.id, 1)
    central = engine.get_run(started.run_id)
    assert (central.workflow, central.params) == (central_name(PLAN), {"federated_run": started.id})
    assert [r.id for r in engine.list_runs() if r.workflow == central_name(PLAN)] == [central.id]
    wait_until(lambda: engine.get_run(central.id).tasks[0].state == "deferred", 30, "deferred")

    # The only task slot (max_parallel_tasks=1) is free while the round waits for the sites.
    engine.registry.add(
        Workflow(
            name="local",
            version="1",
            needs_series=False,
            steps=[Step(name="noop", operator=count_series, mode=ModeValues.per_run)],
        )
    )
    local = engine.start_run(project_pk=central.project_pk, workflow="local")
    assert engine.wait(local.id, timeout=120).state == "succeeded"
    assert engine.get_run(central.id).tasks[0].attempts == 0

    for series, site in enumerate(SITES, start=1):
        orchestrator.deliver(site, jobs[site], series)
    jobs = orchestrator.wait_jobs(started.id, 2)
    after_one = orchestrator.run(started.id)
    assert after_one.finished_rounds == 1 and after_one.result == {"round": 1, "series": 3}
    assert platform.federation.runs.global_artifact(started.id) == {
        "count.json": b'{"round": 1, "series": 3}'
    }
    for site in SITES:
        orchestrator.deliver(site, jobs[site], 10)
    done = orchestrator.wait_end(started.id)

    assert done.state == "succeeded", done.error
    assert done.result == {"round": 2, "series": 23}
    assert done.history == [{"round": r, "sites": list(SITES), "missing": {}} for r in (1, 2)]
    finished = engine.wait(central.id, timeout=30)
    assert finished.state == "succeeded"
    (task,) = finished.tasks
    assert task.attempts == 2  # one execution per round, none per look at the sites
    logs = [engine.log_path(central.id, task.id, attempt=n).read_text() for n in (1, 2)]
    for round, log in enumerate(logs, start=1):
        assert f"federated run {started.id}, round {round}: aggregating site-a, site-b" in log
        assert f"round {round} of federated run {started.id} committed (site-a, site-b)" in log
    manifest = engine.manifest(central.id)
    assert manifest["state"] == "succeeded"
    assert "aggregate/global/count.json" in {a.name for a in engine.artifacts(central.id)}


def test_a_round_short_of_sites_fails_both_runs_naming_the_missing_site(
    orchestrator: Orchestrator,
) -> None:
    runs = orchestrator.platform.federation.runs
    started = runs.start(PLAN, dataset="cohort", actor="admin", min_sites=2, site_timeout=1)
    jobs = orchestrator.wait_jobs(started.id, 1)
    orchestrator.deliver("site-a", jobs["site-a"], 1)
    failed = orchestrator.wait_end(started.id)
    message = "round 1: 1 of 2 sites delivered, 2 needed (site-b: timed_out)"
    assert (failed.state, failed.error) == ("failed", message)
    assert started.run_id is not None
    central = orchestrator.platform.workflows.wait(started.run_id, timeout=30)
    assert central.state == "failed" and central.tasks[0].error == message


def test_canceling_either_run_cancels_the_other(orchestrator: Orchestrator) -> None:
    runs = orchestrator.platform.federation.runs
    engine = orchestrator.platform.workflows
    first = runs.start(PLAN, dataset="cohort", actor="admin")
    orchestrator.wait_jobs(first.id, 1)
    assert first.run_id is not None
    runs.cancel(first.id, actor="admin")
    assert engine.get_run(first.run_id).state == "canceled"

    second = runs.start(PLAN, dataset="cohort", actor="admin")
    orchestrator.wait_jobs(second.id, 1)
    assert second.run_id is not None
    engine.cancel(second.run_id)
    canceled = runs.get(second.id)
    assert canceled.state == "canceled"
    assert {job.state for job in canceled.jobs} == {"canceled"}


def test_the_run_resumes_at_its_unfinished_round_after_the_orchestrator_stopped(
    orchestrator: Orchestrator, settings: Settings
) -> None:
    started = orchestrator.platform.federation.runs.start(
        PLAN, dataset="cohort", actor="admin", rounds=2
    )
    jobs = orchestrator.wait_jobs(started.id, 1)
    for site in SITES:
        orchestrator.deliver(site, jobs[site], 1)
    jobs = orchestrator.wait_jobs(started.id, 2)
    orchestrator.platform.close()

    again = Orchestrator(settings, orchestrator.secrets)
    try:
        for site in SITES:
            again.deliver(site, jobs[site], 2)
        done = again.wait_end(started.id)
        assert done.state == "succeeded", done.error
        assert done.result == {"round": 2, "series": 6}
        assert sorted((j.round, j.site) for j in done.jobs) == [
            (r, s) for r in (1, 2) for s in SITES
        ]
        assert started.run_id is not None
        assert again.platform.workflows.wait(started.run_id, timeout=30).state == "succeeded"
    finally:
        again.platform.close()
