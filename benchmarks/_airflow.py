"""Airflow's side of the engine benchmark: the same no-op per-series tasks as Airflow runs them.

A DAG of one task mapped ``.expand`` over N indexes runs on Airflow's LocalExecutor (standalone:
its own scheduler process, parallelism = the worker count of the kaapana case) with a
PostgreSQL metadata database (``airflow_bench`` on the test server, dropped and created per
benchmark). Airflow lives in a separate venv (``benchmarks/airflow_venv.sh``) so that its
pinned dependencies never touch kaapana's; the case is skipped when that venv is missing. The
wall time is the DAG run's own, from Airflow's ``dag_run.start_date`` to ``end_date``.
"""

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from _common import POSTGRES_URL

AIRFLOW_VENV = Path(os.environ.get("TMPDIR", "/tmp")) / "kaapana-bench-airflow"
DATABASE = "airflow_bench"
DAG_ID = "kaapana_noop"
DAG = """
from datetime import datetime

from airflow.decorators import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def kaapana_noop():
    @task
    def noop(index: int) -> None:
        return None

    noop.expand(index=list(range({tasks})))


kaapana_noop()
"""
_START_TIMEOUT = 300.0


def airflow_version(venv: Path = AIRFLOW_VENV) -> str | None:
    """The installed Airflow's version, or None when the venv is missing."""
    airflow = venv / "bin" / "airflow"
    if not airflow.exists():
        return None
    result = subprocess.run([airflow, "version"], capture_output=True, text=True, timeout=300)
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else None


def _recreate_database() -> str:
    """A fresh ``airflow_bench`` database; returns its URL for Airflow (psycopg2)."""
    server = make_url(POSTGRES_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    url = server.set(drivername="postgresql+psycopg2", database=DATABASE)
    return url.render_as_string(hide_password=False)


def _wait(done: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"Airflow: {what} did not happen within {timeout:.0f} s")


def run_noop(*, tasks: int, workers: int, repeat: int, venv: Path = AIRFLOW_VENV) -> dict[str, Any]:
    """``repeat`` DAG runs of ``tasks`` mapped no-op tasks; walls and task times in seconds."""
    airflow = venv / "bin" / "airflow"
    with tempfile.TemporaryDirectory() as home:
        dags = Path(home) / "dags"
        dags.mkdir()
        (dags / f"{DAG_ID}.py").write_text(DAG.format(dag_id=DAG_ID, tasks=tasks))
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _recreate_database(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": str(workers),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(workers),
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(tasks, 1024)),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        metadata = create_engine(make_url(POSTGRES_URL).set(database=DATABASE))
        log = (Path(home) / "scheduler.log").open("wb")
        scheduler = subprocess.Popen(
            [airflow, "scheduler"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            with metadata.connect() as connection:
                _wait(
                    lambda: connection.execute(
                        text("SELECT 1 FROM dag WHERE dag_id = :d AND NOT is_paused"),
                        {"d": DAG_ID},
                    ).scalar(),
                    "parsing the DAG",
                    _START_TIMEOUT,
                )
            walls, task_seconds = [], []
            for index in range(repeat):
                run_id = f"bench-{index}"
                subprocess.run(
                    [airflow, "dags", "trigger", DAG_ID, "--run-id", run_id],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                with metadata.connect() as connection:
                    row = _wait(
                        lambda connection=connection, run_id=run_id: connection.execute(
                            text(
                                "SELECT state, EXTRACT(EPOCH FROM end_date - start_date) "
                                "FROM dag_run WHERE run_id = :r AND state IN ('success', 'failed')"
                            ),
                            {"r": run_id},
                        ).first(),
                        f"DAG run {run_id}",
                        tasks * 60.0,
                    )
                    if row[0] != "success":
                        raise RuntimeError(f"Airflow: DAG run {run_id} ended {row[0]}")
                    walls.append(float(row[1]))
                    task_seconds.append(
                        float(
                            connection.execute(
                                text("SELECT SUM(duration) FROM task_instance WHERE run_id = :r"),
                                {"r": run_id},
                            ).scalar()
                            or 0.0
                        )
                    )
            return {"wall_s": walls, "task_s": task_seconds}
        finally:
            os.killpg(scheduler.pid, signal.SIGTERM)
            try:
                scheduler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(scheduler.pid, signal.SIGKILL)
                scheduler.wait()
            log.close()
            metadata.dispose()
