"""The scale-out path: a real ``dask scheduler`` and two ``dask worker`` processes on loopback,
reached through the ``dask_scheduler`` setting, with the work folder shared by path."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kaapana.config import Settings
from kaapana.platform import Platform
from tests.helpers import free_port, wait_until
from tests.workflows.conftest import probe_workflow, store_series

DASK = Path(sys.executable).parent / "dask"
ROOT = Path(__file__).parents[2]


@pytest.fixture
def external_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    logs = (tmp_path / "dask.log").open("wb")
    common = {"env": env, "stdout": logs, "stderr": subprocess.STDOUT, "cwd": tmp_path}
    scheduler = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    worker = [str(DASK), "worker", address, "--nthreads", "1", "--host", "127.0.0.1"]
    processes = [
        subprocess.Popen([*scheduler, "--dashboard-address", ":0"], **common),  # type: ignore[call-overload]
        *(
            subprocess.Popen([*worker, "--no-dashboard"], **common)  # type: ignore[call-overload]
            for _ in range(2)
        ),
    ]
    try:
        yield address, processes
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logs.close()


def test_a_run_on_an_existing_cluster_uses_both_workers(
    make_settings: Callable[..., Settings],
    external_cluster: tuple[str, list[subprocess.Popen[bytes]]],
    tmp_path: Path,
) -> None:
    address, _processes = external_cluster
    settings = make_settings(dask_scheduler=address, workflow_entry_points=False)
    markers = tmp_path / "markers"
    markers.mkdir()
    with Platform(settings) as platform:
        engine = platform.workflows
        engine.registry.add(probe_workflow())
        store_series(platform, 4, dataset="cohort")
        client = engine._executor.client()
        wait_until(lambda: len(client.scheduler_info()["workers"]) == 2, what="two workers")
        project_pk = platform.archive.projects.get("admin").id
        run = engine.start_run(
            project_pk=project_pk,
            workflow="probe",
            dataset="cohort",
            params={"marker_dir": str(markers), "sleep": 0.5},
        )
        done = engine.wait(run.id, timeout=120)
        assert done.state == "succeeded", done
        workers = {t.worker for t in done.tasks if t.step == "probe"}
        assert len(workers) == 2
        assert (
            settings.resolved_work_dir / str(run.id) / "gather" / "total.txt"
        ).read_text() == "8"
