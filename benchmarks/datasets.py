"""Datasets benchmark: counting, listing and exporting cohorts over a 100,000-series index.

``summarize`` is what the catalog dashboard runs for every query, so its cost over the whole
index is the figure that matters; beside it: listing a project's datasets (one summary each, in
two queries for all), a page of members deep into a dataset, creating a 50,000-series selection
from UIDs and a snapshot of a select, and streaming a 50,000-series manifest (CSV, and JSON with
every instance).

Counting reads the index only, so the index is filled with rows (patients, studies, series,
instances, project links) straight through SQL instead of ingesting DICOM files: the files would
cost hours to store and change nothing of what is measured. Rows come from a seeded generator.

Usage: ``python benchmarks/datasets.py [--quick] [--only sqlite,postgres] [--repeat N]
[--out FILE]``; JSON goes to stdout (and FILE), progress to stderr.
"""

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, text

from _common import Report, add_output_arguments, latency_summary, postgres_schema, tool_versions
from kaapana.catalog import ManifestFormatValues, summarize
from kaapana.config import Settings
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Instance, Patient, Project, Series, SeriesProject, Study
from kaapana.platform import Platform

MODALITIES = ("CT", "CT", "CT", "MR", "MR", "SEG", "PT", "US")
INSTANCES_PER_SERIES = 2
BATCH = 5_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _uid(kind: int, number: int) -> str:
    return f"1.2.826.0.1.3680043.10.{kind}.{number}"


def fill(engine: Engine, project: Project, *, series: int, seed: int) -> None:
    """Four series per study, two to three studies per patient, all visible to ``project``."""
    rng = random.Random(seed)
    studies = series // 4
    patients = max(1, studies * 2 // 5)
    with write_transaction(engine) as session:
        for start in range(0, patients, BATCH):
            session.execute(
                insert(Patient),
                [
                    {"id": n + 1, "patient_id": f"P{n:07d}"}
                    for n in range(start, min(patients, start + BATCH))
                ],
            )
        for start in range(0, studies, BATCH):
            session.execute(
                insert(Study),
                [
                    {
                        "id": n + 1,
                        "study_instance_uid": _uid(1, n),
                        "patient_pk": rng.randrange(patients) + 1,
                        "study_date": f"20{rng.randrange(15, 25)}0{rng.randrange(1, 10)}15",
                    }
                    for n in range(start, min(studies, start + BATCH))
                ],
            )
        for start in range(0, series, BATCH):
            numbers = range(start, min(series, start + BATCH))
            session.execute(
                insert(Series),
                [
                    {
                        "id": n + 1,
                        "series_instance_uid": _uid(2, n),
                        "study_pk": n // 4 + 1 if n // 4 < studies else studies,
                        "modality": rng.choice(MODALITIES),
                        "series_number": n % 4 + 1,
                        "series_description": "bench",
                        "number_of_instances": INSTANCES_PER_SERIES,
                        "metadata_json": {},
                    }
                    for n in numbers
                ],
            )
            session.execute(
                insert(SeriesProject),
                [{"series_pk": n + 1, "project_pk": project.id} for n in numbers],
            )
            session.execute(
                insert(Instance),
                [
                    {
                        "sop_instance_uid": _uid(3, n * INSTANCES_PER_SERIES + i),
                        "series_pk": n + 1,
                        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
                        "instance_number": i + 1,
                        "storage_key": f"bench/{n}/{i}",
                        "size": 1,
                        "sha256": f"{n * INSTANCES_PER_SERIES + i:064x}",
                        "transfer_syntax_uid": "1.2.840.10008.1.2.1",
                        "metadata_json": {},
                    }
                    for n in numbers
                    for i in range(INSTANCES_PER_SERIES)
                ],
            )


def timed(action: Callable[[], Any], repeat: int) -> tuple[dict[str, float], Any]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - started)
    return latency_summary(samples), result


def _drain(chunks: Iterator[str]) -> dict[str, float]:
    """Consume a stream; the largest chunk shows the memory it needs at once."""
    total, largest, first = 0, 0, None
    started = time.perf_counter()
    for chunk in chunks:
        first = first if first is not None else time.perf_counter() - started
        total += len(chunk)
        largest = max(largest, len(chunk))
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "first_chunk_ms": round((first or 0.0) * 1000, 2),
        "megabytes": round(total / 1e6, 2),
        "largest_chunk_kilobytes": round(largest / 1e3, 1),
    }


def run_case(
    engine_name: str, database_url: str | None, series: int, repeat: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), database_url=database_url)
        with Platform(settings) as platform:
            project = platform.archive.projects.create("bench")
            started = time.perf_counter()
            fill(platform.engine, project, series=series, seed=7)
            with platform.engine.connect() as connection:  # as autovacuum would, by now
                connection.execute(text("ANALYZE"))
                connection.commit()
            log(f"{engine_name}: {series} series filled in {time.perf_counter() - started:.1f} s")
            sessions = session_factory(platform.engine)
            half = series // 2
            uids = [_uid(2, n) for n in range(half)]
            datasets = platform.datasets

            def create() -> None:
                datasets.create(project, "selection", series_instance_uids=uids, actor="bench")

            create_seconds, _ = timed(create, 1)
            snapshot_seconds, _ = timed(
                lambda: datasets.create_snapshot(
                    project,
                    "snapshot",
                    series_ids=select(Series.id).where(Series.modality == "CT"),
                    actor="bench",
                ),
                1,
            )
            for n in range(18):
                datasets.create(
                    project,
                    f"small {n}",
                    series_instance_uids=uids[n * 10 : n * 10 + 10],
                    actor="b",
                )

            def summary(statement: Any) -> Callable[[], Any]:
                def count() -> Any:
                    with sessions() as session:
                        return summarize(session, statement)

                return count

            everything, counts = timed(summary(select(Series.id)), repeat)
            one_modality, _ = timed(
                summary(select(Series.id).where(Series.modality == "MR")), repeat
            )
            listing, listed = timed(lambda: datasets.list(project), repeat)
            deep_page, _ = timed(
                lambda: datasets.members(project, "selection", limit=100, offset=half - 200),
                repeat,
            )
            as_csv = _drain(
                datasets.manifest(
                    project, "selection", format=ManifestFormatValues.csv, actor="bench"
                )
            )
            as_json = _drain(
                datasets.manifest(
                    project, "selection", format=ManifestFormatValues.json, actor="bench"
                )
            )
    return {
        "engine": engine_name,
        "series": series,
        "patients": counts.patients,
        "studies": counts.studies,
        "instances": counts.instances,
        "summarize_all_series": everything,
        "summarize_one_modality": one_modality,
        "list_datasets": {**listing, "datasets": len(listed)},
        "members_page_at_the_end": deep_page,
        "create_selection_from_uids": {**create_seconds, "series": half},
        "create_snapshot_of_select": snapshot_seconds,
        "manifest_csv": {**as_csv, "series": half},
        "manifest_json": {**as_json, "series": half},
    }


@contextmanager
def database(engine_name: str) -> Iterator[str | None]:
    if engine_name == "sqlite":
        yield None
        return
    with postgres_schema() as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 series instead of 100,000")
    parser.add_argument("--only", default="sqlite,postgres", help="engines, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query")
    add_output_arguments(parser)
    args = parser.parse_args()
    series = 10_000 if args.quick else 100_000
    report = Report("datasets", environment={**tool_versions(), "series": series})
    for engine_name in args.only.split(","):
        try:
            with database(engine_name) as url:
                report.cases.append(run_case(engine_name, url, series, args.repeat))
        except Exception as exc:  # one engine failing must not hide the other's figures
            report.errors.append(f"{engine_name}: {exc!r}")
    report.emit(args.out)


if __name__ == "__main__":
    main()
