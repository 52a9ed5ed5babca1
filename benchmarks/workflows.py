"""Built-in operator workflows through the engine: convert-to-nifti and segment-ct.

1. ``convert-to-nifti`` of N CT series (128x128x48, default N=100).
2. ``segment-ct`` of M CT volumes of 512x512x200 (default M=20).

Each case runs on a fresh platform with the default cluster (a local Dask cluster of one
worker process per core; a warm-up run starts it first, as a server would have it running).
Reported: the run's wall time, the per-series task time (median and max, from the tasks'
start and end), and the peak resident memory of the workers and their operator processes,
read with ``getrusage(RUSAGE_CHILDREN)`` after the cluster has stopped (a running maximum over
the benchmark's children, so the cases run smallest first).

Usage: ``python benchmarks/workflows.py [--quick] [--series N] [--volumes M] [--out FILE]``;
JSON to stdout. ``--quick``: N=10, M=2.
"""

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pydicom import Dataset

from _common import Report, add_output_arguments, tool_versions
from kaapana.archive.metadata import inspect
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series

MB = 1024  # ru_maxrss is in KiB on Linux


def _store(platform: Platform, dataset: str, series: Iterator[list[Dataset]]) -> None:
    target = platform.archive.target("admin", dataset)
    for datasets in series:
        batch = []
        for ds in datasets:
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            batch.append(inspect(buffer.getvalue()))
        platform.archive.store_all(batch, target)


def _case(
    scratch: Path,
    *,
    name: str,
    workflow: str,
    count: int,
    make: Callable[[int], list[Dataset]],
) -> dict[str, object]:
    settings = Settings(data_dir=scratch / name, workflow_entry_points=False)
    with Platform(settings) as platform:
        print(f"{name}: storing {count} series", file=sys.stderr)
        _store(platform, "warmup", (make(seed) for seed in range(1)))
        _store(platform, name, (make(seed) for seed in range(1, count + 1)))
        engine = platform.workflows
        project_pk = platform.archive.projects.get("admin").id
        warmup = engine.start_run(project_pk=project_pk, workflow=workflow, dataset="warmup")
        engine.wait(warmup.id, timeout=3600)
        started = time.perf_counter()
        run = engine.start_run(project_pk=project_pk, workflow=workflow, dataset=name)
        done = engine.wait(run.id, timeout=24 * 3600, poll=0.1)
        wall = time.perf_counter() - started
        if done.state != "succeeded":
            raise RuntimeError(f"run {run.id} of {workflow} ended {done.state}: {done.error}")
        times = [
            (t.finished_at - t.started_at).total_seconds()
            for t in done.tasks
            if t.started_at and t.finished_at
        ]
        workers = settings.dask_workers or os.cpu_count() or 1
    print(f"{name}: {count} series in {wall:.1f} s", file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MB
    return {
        "case": name,
        "workflow": workflow,
        "series": count,
        "workers": workers,
        "wall_s": round(wall, 2),
        "task_s_median": round(statistics.median(times), 3),
        "task_s_max": round(max(times), 3),
        "series_per_s": round(count / wall, 3),
        "peak_rss_mb_children": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 conversions, 2 volumes")
    parser.add_argument("--series", type=int, help="series to convert (default 100)")
    parser.add_argument("--volumes", type=int, help="512x512x200 CTs to segment (default 20)")
    add_output_arguments(parser)
    args = parser.parse_args()
    series = args.series or (10 if args.quick else 100)
    volumes = args.volumes or (2 if args.quick else 20)
    report = Report(benchmark="workflows", environment=tool_versions())
    with tempfile.TemporaryDirectory() as scratch:
        report.cases.append(
            _case(
                Path(scratch),
                name="convert",
                workflow="convert-to-nifti",
                count=series,
                make=lambda seed: ct_series(patient_id=f"N{seed}", seed=seed),
            )
        )
        report.cases.append(
            _case(
                Path(scratch),
                name="segment",
                workflow="segment-ct",
                count=volumes,
                make=lambda seed: ct_series(
                    patient_id=f"S{seed}", rows=512, columns=512, slices=200, seed=seed
                ),
            )
        )
    report.emit(args.out)


if __name__ == "__main__":
    main()
