"""Gated steps: a task waits deferred for its gate without holding a worker, runs once per time
the gate lets it (with the gate's files, a log per execution) and ends when the gate says so."""

import threading
from collections.abc import Callable
from datetime import timedelta

from kaapana.db.models import utcnow
from kaapana.errors import Conflict
from kaapana.workflows import (
    Done,
    GateAnswer,
    GateRequest,
    ModeValues,
    Ready,
    Step,
    Wait,
    Workflow,
)
from tests.helpers import wait_until
from tests.workflows import operators
from tests.workflows.conftest import Site


class Turnstile:
    """Lets the task run once per opening, ``rounds`` times; asked before each execution."""

    def __init__(self, rounds: int, *, refuse: bool = False) -> None:
        self.rounds = rounds
        self.refuse = refuse
        self.opened = threading.Semaphore(0)
        self.asked: list[int] = []
        self.heard: list[tuple[int, str, str]] = []

    def consult(self, request: GateRequest) -> GateAnswer:
        self.asked.append(request.executions)
        if self.refuse:
            raise Conflict("the turnstile is locked for good")
        if request.executions >= self.rounds:
            return Done()
        if not self.opened.acquire(blocking=False):
            return Wait(utcnow() + timedelta(hours=1))  # only a poke brings it back sooner
        note = f"round {request.executions + 1} of run {request.run_id}"
        return Ready({"notes/note.txt": note.encode()})

    def ended(self, run_id: int, state: str, error: str) -> None:
        self.heard.append((run_id, state, error))


def _gated(site: Site, gate: Turnstile) -> None:
    engine = site.platform.workflows
    engine.gates.register("turnstile", gate)
    engine.registry.add(
        Workflow(
            name="gated",
            version="1",
            needs_series=False,
            steps=[
                Step(
                    name="echo",
                    operator=operators.echo_gate_input,
                    mode=ModeValues.per_run,
                    gate="turnstile",
                    artifacts=("note.txt",),
                )
            ],
        )
    )


def test_a_gated_task_waits_without_a_worker_and_runs_once_per_opening(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=1, max_parallel_tasks=1)
    gate = Turnstile(rounds=2)
    _gated(site, gate)
    engine = site.platform.workflows
    run = engine.start_run(project_pk=site.project_pk, workflow="gated")
    wait_until(lambda: engine.get_run(run.id).tasks[0].state == "deferred", 30, "deferred")

    # The one slot stays free while the gated task waits: another workflow runs meanwhile.
    other = engine.start_run(
        project_pk=site.project_pk,
        workflow="probe",
        dataset="cohort",
        params={"marker_dir": str(site.markers)},
    )
    assert engine.wait(other.id, timeout=120).state == "succeeded"
    (task,) = engine.get_run(run.id).tasks
    assert (task.state, task.attempts) == ("deferred", 0)
    asked = len(gate.asked)

    gate.opened.release()
    engine.poke_gates()
    wait_until(lambda: engine.get_run(run.id).tasks[0].attempts == 1, 30, "first execution")
    wait_until(lambda: engine.get_run(run.id).tasks[0].state == "deferred", 60, "deferred again")
    assert len(gate.asked) > asked  # asked on the poke, not an hour later
    gate.opened.release()
    engine.poke_gates()
    done = engine.wait(run.id, timeout=120)

    assert done.state == "succeeded", done
    (task,) = done.tasks
    assert (task.state, task.attempts) == ("succeeded", 2)
    assert gate.asked[-1] == 2  # the gate said done after two executions
    logs = [engine.log_path(run.id, task.id, attempt=n).read_text() for n in (1, 2)]
    assert [log.splitlines()[0] for log in logs] == [
        f"execution 1: round 1 of run {run.id}",
        f"execution 2: round 2 of run {run.id}",
    ]
    (artifact,) = [a for a in engine.artifacts(run.id) if a.name == "echo/note.txt"]
    _view, stream = engine.open_artifact(run.id, artifact.name)
    with stream:
        assert stream.read() == f"round 2 of run {run.id}".encode()
    assert engine.manifest(run.id)["state"] == "succeeded"
    assert gate.heard == [(run.id, "succeeded", "")]


def test_a_gate_that_refuses_fails_the_task_at_once_and_hears_the_end(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=1)
    gate = Turnstile(rounds=1, refuse=True)
    _gated(site, gate)
    engine = site.platform.workflows
    run = engine.start_run(project_pk=site.project_pk, workflow="gated")
    done = engine.wait(run.id, timeout=60)
    assert done.state == "failed"
    (task,) = done.tasks
    assert (task.state, task.attempts, task.error) == (
        "failed",
        0,
        "the turnstile is locked for good",
    )
    wait_until(lambda: bool(gate.heard), 10, "the gate told")
    assert gate.heard == [(run.id, "failed", "")]


def test_canceling_a_deferred_run_tells_its_gate(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    gate = Turnstile(rounds=1)
    _gated(site, gate)
    engine = site.platform.workflows
    run = engine.start_run(project_pk=site.project_pk, workflow="gated")
    wait_until(lambda: engine.get_run(run.id).tasks[0].state == "deferred", 30, "deferred")
    canceled = engine.cancel(run.id)
    assert canceled.state == "canceled" and canceled.tasks[0].state == "canceled"
    assert gate.heard == [(run.id, "canceled", "canceled")]
