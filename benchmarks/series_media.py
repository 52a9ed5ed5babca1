"""Series media benchmark: what the work after SeriesArrived costs per series.

One CT phantom series (and its SEG) is stored in a fresh in-process platform on SQLite; then the
steps the background worker runs are timed one by one, several times: recording references, the
thumbnail of the CT and of the SEG (overlay), and validation with dciodvfy (when installed) and
with the built-in checks. The figures say how many arriving series one worker keeps up with.
Then ``arrival``: N more CT series of the same size arrive at once and go the way of a server's,
through the system trigger rule and the service workflow ``series-media`` on the default
cluster (started, and warmed up by the first two series, as a running server has it), timed
from the announcement until every run has ended; ``per_series_ms`` is wall time / N.

Usage: ``python benchmarks/series_media.py [--quick] [--repeat N] [--out FILE]``; JSON goes to
stdout (and FILE), progress to stderr.
"""

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from _common import Report, add_output_arguments, latency_summary, tool_versions
from kaapana.archive import SeriesQuietMonitor
from kaapana.catalog import make_series_thumbnail, record_references, validate_series
from kaapana.catalog.series_workflow import SERIES_MEDIA
from kaapana.config import Settings
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Series
from kaapana.platform import Platform
from kaapana.testing import ct_segmentation, ct_series
from kaapana.testing.synthetic import write_datasets


def _timed(step: Callable[[], Any], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return latency_summary(samples)


def _announce_and_wait(platform: Platform) -> float:
    """Announce every quiet series; seconds until every run of the service has ended."""
    monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0.001)
    time.sleep(0.01)
    start = time.perf_counter()
    monitor.poll()
    for run in platform.workflows.list_runs(limit=1000):
        if run.workflow == SERIES_MEDIA:
            ended = platform.workflows.wait(run.id, timeout=3600, poll=0.02)
            if ended.state != "succeeded":
                raise RuntimeError(f"run {run.id} of {SERIES_MEDIA} ended {ended.state}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 64x64x16 series instead")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each step")
    parser.add_argument("--arrivals", type=int, default=20, help="series of the arrival case")
    add_output_arguments(parser)
    args = parser.parse_args()
    size, slices = (64, 16) if args.quick else (256, 96)
    report = Report(
        "series_media",
        environment={**tool_versions(), "rows": size, "columns": size, "slices": slices},
    )
    with tempfile.TemporaryDirectory() as tmp:
        print(f"generating a {size}x{size}x{slices} CT and its SEG", file=sys.stderr)
        ct = ct_series(rows=size, columns=size, slices=slices, seed=1)
        seg = ct_segmentation(ct, seed=1)
        settings = Settings(data_dir=Path(tmp) / "data")
        paths = write_datasets([*ct, seg], Path(tmp) / "input")
        with Platform(settings) as platform:
            target = platform.archive.target()
            for path in paths:
                platform.archive.store_bytes(path.read_bytes(), target)
            with session_factory(platform.engine)() as session:
                pks = {
                    row.series_instance_uid: row.id
                    for row in session.execute(select(Series.id, Series.series_instance_uid))
                }
            ct_pk, seg_pk = pks[ct[0].SeriesInstanceUID], pks[seg.SeriesInstanceUID]

            def references() -> None:
                with write_transaction(platform.engine) as session:
                    record_references(session, seg_pk)

            def thumbnail(pk: int) -> Callable[[], bytes]:
                return lambda: make_series_thumbnail(
                    engine=platform.engine,
                    store=platform.store,
                    results=platform.results,
                    series_pk=pk,
                )

            def validation(path: str) -> Callable[[], object]:
                return lambda: validate_series(
                    engine=platform.engine,
                    store=platform.store,
                    series_pk=ct_pk,
                    dciodvfy_path=path,
                )

            steps: dict[str, Callable[[], Any]] = {
                "references_seg": references,
                "thumbnail_ct": thumbnail(ct_pk),
                "thumbnail_seg_overlay": thumbnail(seg_pk),
                "validation_builtin": validation("/nonexistent/dciodvfy"),
            }
            if shutil.which("dciodvfy"):
                steps["validation_dciodvfy"] = validation("dciodvfy")
            else:
                report.errors.append("dciodvfy is not installed; its case is missing")
            for name, step in steps.items():
                print(f"timing {name}", file=sys.stderr)
                report.cases.append({"case": name, **_timed(step, args.repeat)})
            print(f"timing the arrival of {args.arrivals} series", file=sys.stderr)
            platform.workflows.start()
            _announce_and_wait(platform)  # the CT and SEG above: starts the cluster
            arriving = [
                ds
                for seed in range(100, 100 + args.arrivals)
                for ds in ct_series(rows=size, columns=size, slices=slices, seed=seed)
            ]
            for path in write_datasets(arriving, Path(tmp) / "arriving"):
                platform.archive.store_bytes(path.read_bytes(), target)
            wall = _announce_and_wait(platform)
            report.cases.append(
                {
                    "case": "arrival",
                    "series": args.arrivals,
                    "wall_s": round(wall, 3),
                    "per_series_ms": round(wall / args.arrivals * 1000, 2),
                }
            )
    report.emit(args.out)


if __name__ == "__main__":
    main()
