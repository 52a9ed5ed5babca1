"""Faults on a real cluster: timeouts kill the process tree, cancel stops work, a killed worker's
task runs again, an engine restart resumes a run without running finished tasks again."""

import os
import signal
from collections.abc import Callable

import psutil
from sqlalchemy import func, select

from kaapana.db.models import Task
from kaapana.platform import Platform
from kaapana.workflows import Step, Workflow
from tests.helpers import wait_until
from tests.workflows import operators
from tests.workflows.conftest import Site, probe_workflow


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _succeeded(platform: Platform, run_id: int) -> int:
    with platform.archive._sessions() as session:
        return session.scalar(
            select(func.count()).where(Task.run_pk == run_id, Task.state == "succeeded")
        )


def test_timeout_kills_the_whole_process_tree(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    engine.registry.add(
        Workflow(
            name="hang",
            version="1",
            parameters=operators.ProbeParameters,
            steps=[Step(name="hang", operator=operators.spawn_and_wait, timeout=1.0)],
        )
    )
    run = engine.start_run(
        project_pk=site.project_pk,
        workflow="hang",
        dataset="cohort",
        params={"marker_dir": str(site.markers)},
    )
    done = engine.wait(run.id, timeout=60)
    assert done.state == "failed" and done.tasks[0].error == "timeout after 1.0 s"
    grandchild = int((site.markers / "grandchild.pid").read_text())
    wait_until(lambda: _gone(grandchild), timeout=10, what="the grandchild to be killed")
    operator_pid = int(site.executions("hang")[0].rsplit(".", 1)[1])
    assert _gone(operator_pid)
    assert (
        "timeout after 1.0 s, process group killed"
        in engine.log_path(run.id, done.tasks[0].id).read_text()
    )


def test_cancel_kills_running_tasks_and_pending_ones_never_start(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=3)
    engine = site.platform.workflows
    run = engine.start_run(
        project_pk=site.project_pk,
        workflow="probe",
        dataset="cohort",
        params={"marker_dir": str(site.markers), "sleep": 60},
    )
    wait_until(lambda: len(site.executions("probe")) >= 2, timeout=60, what="probes to start")
    canceled = engine.cancel(run.id)
    assert canceled.state == "canceled"
    assert {t.state for t in canceled.tasks} == {"canceled"}
    started = [int(name.rsplit(".", 1)[1]) for name in site.executions("probe")]
    wait_until(lambda: all(_gone(pid) for pid in started), timeout=15, what="operators killed")
    # The workers are free at once: a new short run finishes although the old tasks slept 60 s.
    quick = engine.start_run(
        project_pk=site.project_pk, workflow="series-metadata", dataset="cohort"
    )
    assert engine.wait(quick.id, timeout=60).state == "succeeded"
    assert site.executions("gather") == []
    assert engine.get_run(run.id).state == "canceled"
    # Also a probe that only reached a worker after the cancel is stopped (or never started).
    assert all(_gone(int(name.rsplit(".", 1)[1])) for name in site.executions("probe"))


def test_a_killed_workers_task_runs_again(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    run = engine.start_run(
        project_pk=site.project_pk,
        workflow="probe",
        dataset="cohort",
        params={"marker_dir": str(site.markers), "sleep": 3},
    )
    wait_until(lambda: site.executions("probe"), timeout=60, what="the probe to start")
    first = site.executions("probe")[0]
    worker_pid = int((site.markers / first).read_text())
    os.kill(worker_pid, signal.SIGKILL)
    done = engine.wait(run.id, timeout=120)
    assert done.state == "succeeded", done
    assert _gone(int(first.rsplit(".", 1)[1]))  # the operator died with its worker
    assert len(site.executions("probe")) == 2


def test_restart_resumes_and_never_runs_a_finished_task_again(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=4)
    settings = site.platform.settings
    run = site.platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="probe",
        dataset="cohort",
        params={"marker_dir": str(site.markers), "sleep": 1.5},
    )
    wait_until(lambda: _succeeded(site.platform, run.id) >= 2, timeout=60, what="two probes")
    site.platform.workflows.close()  # the scheduler stops mid-run, tasks recorded as running
    finished_before = {
        t.series_instance_uid
        for t in site.platform.workflows.get_run(run.id).tasks
        if t.state == "succeeded"
    }
    assert len(finished_before) >= 2
    with Platform(settings) as again:
        again.workflows.registry.add(probe_workflow(retries=1))
        assert again.workflows.start()
        done = again.workflows.wait(run.id, timeout=120)
    assert done.state == "succeeded", done
    for uid in site.series:
        runs = [n for n in site.executions("probe") if n.startswith(f"probe.{uid}.")]
        if uid in finished_before:
            assert len(runs) == 1, (uid, runs)
        else:
            assert len(runs) >= 1
    assert len(site.executions("gather")) == 1
