"""Workflow engine benchmark: scheduling overhead per task, and dcm2niix through the engine
against a plain shell loop.

1. ``noop``: 1,000 per-series no-op tasks on the default cluster (a local Dask cluster of one
   worker process per core). Reported: wall time per task, and the overhead per task, i.e. the
   worker time per task that is not the operator (``wall x workers / tasks - operator time``;
   the operator's own time is the fork of its process and nothing else, so it is counted as
   overhead too). Target: <= 20 ms. A warm-up run starts the cluster first, as a server would
   have it running.
2. ``dcm2niix``: 200 CT series converted to NIfTI by a command step (Kaapana's contract, one
   task per series) against ``xargs -P <workers>`` running ``dcm2niix`` over the same input
   folders (links to the same stored files) with the same parallelism. Target: <= 1.2x. Two
   sizes: ``dcm2niix`` with CT series of 32 slices of 512x512 (the target's case; real CT series
   have more slices, which only lowers the ratio) and ``dcm2niix-tiny`` with 4 slices of 16x16,
   where dcm2niix takes ~30 ms and the ratio shows the engine's overhead per task.

3. ``airflow-noop``: the same no-op tasks in Apache Airflow (one task mapped with ``.expand``
   over the indexes, LocalExecutor with parallelism = the workers above, PostgreSQL metadata
   database), when its venv exists (``sh benchmarks/airflow_venv.sh``; see ``_airflow.py``).
   Reported with the same formulas, beside ours.

Usage: ``python benchmarks/engine.py [--quick] [--repeat N] [--airflow-tasks N]
[--airflow-repeat N] [--out FILE]``; JSON to stdout.
"""

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _airflow import AIRFLOW_VENV, airflow_version, run_noop
from _common import Report, add_output_arguments, median, tool_versions
from kaapana.archive.metadata import inspect
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.workflows import CommandOperator, Step, Workflow

DCM2NIIX = Path(sys.executable).parent / "dcm2niix"
CONVERT = (
    'exec "$DCM2NIIX" -z n -o "$WORKFLOW_DIR/$BATCH_NAME"/*/"$OPERATOR_OUT_DIR" '
    '"$WORKFLOW_DIR/$BATCH_NAME"/*/"$OPERATOR_IN_DIR" > /dev/null'
)


def _store(
    platform: Platform, count: int, slices: int, dataset: str, seed0: int, size: int = 16
) -> None:
    target = platform.archive.target("admin", dataset)
    batch = []
    for seed in range(seed0, seed0 + count):
        for ds in ct_series(
            patient_id=f"B{seed}", rows=size, columns=size, slices=slices, seed=seed
        ):
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            batch.append(inspect(buffer.getvalue()))
        if len(batch) >= 256:
            platform.archive.store_all(batch, target)
            batch = []
    if batch:
        platform.archive.store_all(batch, target)


def _timed_run(platform: Platform, workflow: str, dataset: str) -> tuple[float, int]:
    engine = platform.workflows
    project_pk = platform.archive.projects.get("admin").id
    started = time.perf_counter()
    run = engine.start_run(project_pk=project_pk, workflow=workflow, dataset=dataset)
    done = engine.wait(run.id, timeout=3600)
    elapsed = time.perf_counter() - started
    if done.state != "succeeded":
        raise RuntimeError(f"run {run.id} of {workflow} ended {done.state}: {done.error}")
    return elapsed, len(done.tasks)


def _shell_loop(platform: Platform, run_id: int, workers: int, out: Path) -> float:
    """dcm2niix over the same input folders the engine used, ``workers`` at a time."""
    batch = platform.settings.resolved_work_dir / str(run_id) / "batch"
    inputs = sorted(p.name for p in batch.iterdir())
    for uid in inputs:
        (out / uid).mkdir(parents=True)
    script = f'exec "{DCM2NIIX}" -z n -o "{out}/$1" "{batch}/$1/get-input-data" > /dev/null'
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-P", str(workers), "-n", "1", "sh", "-c", script, "loop"],
        input="\n".join(inputs).encode(),
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 no-op tasks, 20 conversions")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case")
    parser.add_argument(
        "--airflow-tasks",
        type=int,
        help="no-op tasks for Airflow (default: as for kaapana; 0: none)",
    )
    parser.add_argument("--airflow-repeat", type=int, default=1, help="timed Airflow runs")
    add_output_arguments(parser)
    args = parser.parse_args()
    noop_tasks, conversions = (100, 20) if args.quick else (1000, 200)
    report = Report(benchmark="engine", environment=tool_versions())
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch) / "data", workflow_entry_points=False)
        workers = settings.dask_workers or os.cpu_count() or 1
        report.environment["dask_workers"] = str(workers)
        with Platform(settings) as platform:
            print("storing series", file=sys.stderr)
            _store(platform, 4, 1, "warmup", 0)
            _store(platform, noop_tasks, 1, "noop", 100)
            _store(platform, conversions, 4, "convert", 10_000)
            _store(platform, conversions, 32, "convert-ct", 20_000, size=512)
            _timed_run(platform, "noop", "warmup")  # starts the cluster
            walls = []
            for _ in range(args.repeat):
                wall, tasks = _timed_run(platform, "noop", "noop")
                walls.append(wall)
                print(f"noop: {tasks} tasks in {wall:.2f} s", file=sys.stderr)
            overhead_ms = median(walls) / noop_tasks * 1000 * workers
            report.cases.append(_noop_case("noop", noop_tasks, workers, walls))
            report.cases[-1].update(target_ms=20, met=overhead_ms <= 20)
            platform.workflows.registry.add(
                Workflow(
                    name="dcm2niix",
                    version="1",
                    steps=[
                        Step(
                            name="dcm2niix",
                            operator=CommandOperator(
                                ("sh", "-c", CONVERT), {"DCM2NIIX": str(DCM2NIIX)}
                            ),
                        )
                    ],
                )
            )
            for case, dataset in (("dcm2niix", "convert-ct"), ("dcm2niix-tiny", "convert")):
                report.cases.append(
                    _conversion_case(platform, case, dataset, conversions, workers, args.repeat)
                )
                shutil.rmtree(Path(scratch) / "loop", ignore_errors=True)
    airflow_tasks = noop_tasks if args.airflow_tasks is None else args.airflow_tasks
    if airflow_tasks:
        _airflow_case(report, airflow_tasks, workers, args.airflow_repeat)
    report.emit(args.out)


def _conversion_case(
    platform: Platform, case: str, dataset: str, series: int, workers: int, repeat: int
) -> dict[str, Any]:
    engine_walls, loop_walls = [], []
    for index in range(repeat):
        wall, _tasks = _timed_run(platform, "dcm2niix", dataset)
        engine_walls.append(wall)
        run_id = platform.workflows.list_runs(limit=1)[0].id
        out = platform.settings.data_dir.parent / "loop" / str(index)
        loop_walls.append(_shell_loop(platform, run_id, workers, out))
        shutil.rmtree(out)
        print(f"{case}: engine {wall:.2f} s, loop {loop_walls[-1]:.2f} s", file=sys.stderr)
    ratio = median(engine_walls) / median(loop_walls)
    return {
        "case": case,
        "series": series,
        "parallelism": workers,
        "engine_wall_s": [round(w, 3) for w in engine_walls],
        "shell_loop_wall_s": [round(w, 3) for w in loop_walls],
        "ratio": round(ratio, 3),
        "target": 1.2,
        "met": ratio <= 1.2,
    }


def _noop_case(case: str, tasks: int, workers: int, walls: list[float]) -> dict[str, Any]:
    """Wall per task, and overhead per task: worker time per task (``wall x workers / tasks``),
    all of it overhead as the operator does nothing."""
    per_task_ms = median(walls) / tasks * 1000
    return {
        "case": case,
        "tasks": tasks,
        "workers": workers,
        "wall_s": [round(w, 3) for w in walls],
        "wall_per_task_ms": round(per_task_ms, 2),
        "overhead_per_task_ms": round(per_task_ms * workers, 2),
    }


def _airflow_case(report: Report, tasks: int, workers: int, repeat: int) -> None:
    version = airflow_version()
    if version is None:
        report.errors.append(f"no Airflow venv at {AIRFLOW_VENV}: sh benchmarks/airflow_venv.sh")
        return
    report.environment["airflow"] = version
    print(f"airflow {version}: {tasks} mapped no-op tasks", file=sys.stderr)
    measured = run_noop(tasks=tasks, workers=workers, repeat=repeat)
    case = _noop_case("airflow-noop", tasks, workers, measured["wall_s"])
    case["task_duration_s"] = [round(t, 1) for t in measured["task_s"]]
    report.cases.append(case)
    ours = next(c for c in report.cases if c["case"] == "noop")
    report.ratio(
        "airflow_over_kaapana_overhead",
        case["overhead_per_task_ms"],
        ours["overhead_per_task_ms"],
        None,
    )


if __name__ == "__main__":
    main()
