"""Catalog benchmark: search, facets and free text over 100,000 series, on SQLite and PostgreSQL.

The issue's targets, per engine: a 3-filter search p50 <= 50 ms, facets over 5 fields p50 <= 150
ms, a free-text search p50 <= 100 ms, and a query matching about half the series materialised
into a snapshot dataset (`Datasets.create_snapshot` with the query) in <= 2 s.

The series are not sent through DICOM ingest (that is what ``ingest.py`` measures): each gets a
seeded, realistic series-level DICOM JSON document, and the catalog rows are built from it by
the catalog's own code (``series_values``, derived fields included) and bulk-inserted, together
with the patients, studies, series and project links they belong to. Every query goes through
the public ``Catalog`` API, as the REST routes call it, and each timed query is checked to find
something, so a fast empty answer cannot pass for a result.

Usage: ``python benchmarks/catalog.py [--small] [--only sqlite,postgres] [--queries N]
[--keep] [--out FILE]``; JSON goes to stdout (and FILE), progress to stderr. With ``--keep`` the
loaded archives outlive the run (SQLite's data dir under ``--cache-dir``, PostgreSQL's schema
``kp_bench_catalog_<series>``) and a later ``--keep`` run measures them again without loading.
"""

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text

from _common import (
    POSTGRES_URL,
    Report,
    add_output_arguments,
    latency_summary,
    postgres_schema,
    tool_versions,
)
from kaapana.catalog import FacetSpec, parse_query
from kaapana.catalog.derived import SeriesFacts
from kaapana.catalog.indexing import series_values, text_document
from kaapana.config import Settings
from kaapana.db.models import (
    Patient,
    Series,
    SeriesAttribute,
    SeriesProject,
    SeriesTag,
    SeriesText,
    Study,
)
from kaapana.platform import Platform

ENGINES = ("sqlite", "postgres")
SERIES_PER_STUDY = 4
STUDIES_PER_PATIENT = 2
_MODALITIES = [("CT", 50), ("MR", 25), ("SEG", 10), ("CR", 8), ("PT", 7)]
_BODY_PARTS = ["CHEST", "ABDOMEN", "HEAD", "PELVIS", "NECK", "KNEE", "SPINE"]
_MANUFACTURERS = ["SIEMENS", "GE MEDICAL SYSTEMS", "Philips", "Canon Medical Systems", "Agfa"]
_WORDS = [
    "thorax",
    "abdomen",
    "liver",
    "portal",
    "venous",
    "arterial",
    "native",
    "lung",
    "head",
    "t1w",
    "t2w",
    "flair",
    "dwi",
    "bone",
    "soft",
    "kernel",
    "contrast",
    "axial",
]
_LABELS = ["liver", "spleen", "kidney", "lung", "tumor", "aorta"]
_THICKNESS = [0.625, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0]
_SERIES_CHUNK = 5_000


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


def _uid(*parts: int) -> str:
    return "2.25." + "".join(f"{part:010d}" for part in parts)


def _document(
    rng: random.Random, pk: int, study: dict[str, Any], patient: dict[str, Any], modality: str
) -> dict[str, Any]:
    """A series-level DICOM JSON document (PS3.18 F.2) of the size real CT/MR headers have."""
    description = " ".join(rng.sample(_WORDS, 3))
    thickness = rng.choice(_THICKNESS)
    doc = {
        "00080008": _element("CS", "ORIGINAL", "PRIMARY", rng.choice(["AXIAL", "LOCALIZER"])),
        "00080020": _element("DA", study["study_date"]),
        "00080021": _element("DA", study["study_date"]),
        "00080030": _element("TM", study["study_time"]),
        "00080031": _element("TM", study["study_time"]),
        "00080050": _element("SH", study["accession_number"]),
        "00080060": _element("CS", modality),
        "00080070": _element("LO", rng.choice(_MANUFACTURERS)),
        "00080080": _element("LO", "Kaapana Demo Hospital"),
        "00081030": _element("LO", study["study_description"]),
        "0008103E": _element("LO", description),
        "00081090": _element("LO", f"Scanner {rng.randrange(20)}"),
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": patient["patient_name"]}]},
        "00100020": _element("LO", patient["patient_id"]),
        "00100030": _element("DA", patient["patient_birth_date"]),
        "00100040": _element("CS", patient["patient_sex"]),
        "00101010": _element("AS", f"{rng.randrange(18, 95):03d}Y"),
        "00180015": _element("CS", rng.choice(_BODY_PARTS)),
        "00180050": _element("DS", thickness),
        "00180060": _element("DS", rng.choice([80, 100, 120, 140])),
        "00181020": _element("LO", f"VA{rng.randrange(10)}"),
        "00181030": _element("LO", description.upper()),
        "00181210": _element("SH", rng.choice(["B30f", "B70f", "STANDARD", "LUNG"])),
        "0020000D": _element("UI", study["study_instance_uid"]),
        "0020000E": _element("UI", _uid(pk, 2)),
        "00200011": _element("IS", rng.randrange(1, 12)),
        "00200052": _element("UI", _uid(pk, 3)),
        "00280010": _element("US", 512),
        "00280011": _element("US", 512),
        "00280030": _element("DS", 0.7, 0.7),
        "00281050": _element("DS", 40),
        "00281051": _element("DS", 400),
        "0008115C": {"vr": "SQ", "Value": [{"0020000E": _element("UI", _uid(pk - 1, 2))}]},
    }
    if modality == "SEG":
        labels = rng.sample(_LABELS, 2)
        doc["00620002"] = {
            "vr": "SQ",
            "Value": [{"00620005": _element("LO", label)} for label in labels],
        }
    return doc


def _pick_modality(rng: random.Random) -> str:
    return rng.choices([m for m, _ in _MODALITIES], weights=[w for _, w in _MODALITIES])[0]


def _rows(
    series_count: int, project_pk: int, seed: int
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Chunks of rows for every table, consistent with each other; pks assigned here."""
    rng = random.Random(seed)
    start = date(2015, 1, 1)
    created = datetime(2025, 1, 1)
    study: dict[str, Any] = {}
    patient: dict[str, Any] = {}
    chunk: dict[str, list[dict[str, Any]]] = {
        name: []
        for name in ("patients", "studies", "series", "links", "attributes", "texts", "tags")
    }
    for index in range(series_count):
        pk = index + 1
        if index % SERIES_PER_STUDY == 0:
            study_pk = index // SERIES_PER_STUDY + 1
            if (study_pk - 1) % STUDIES_PER_PATIENT == 0:
                patient_pk = (study_pk - 1) // STUDIES_PER_PATIENT + 1
                patient = {
                    "id": patient_pk,
                    "patient_id": f"BP{patient_pk:07d}",
                    "issuer_of_patient_id": "",
                    "patient_name": f"Bench{patient_pk}^{rng.choice(['Ana', 'Ben', 'Cem', 'Dia'])}",
                    "patient_birth_date": f"{rng.randrange(1930, 2005)}0615",
                    "patient_sex": rng.choice("FM"),
                }
                chunk["patients"].append(patient)
            on = start + timedelta(days=rng.randrange(3650))
            study = {
                "id": study_pk,
                "study_instance_uid": _uid(study_pk, 1),
                "patient_pk": patient["id"],
                "study_date": on.strftime("%Y%m%d"),
                "study_time": f"{rng.randrange(7, 19):02d}1500",
                "accession_number": f"A{study_pk:08d}",
                "study_id": "1",
                "study_description": f"{rng.choice(_BODY_PARTS).title()} study",
                "referring_physician_name": "",
                "created_at": created,
            }
            chunk["studies"].append(study)
        modality = _pick_modality(rng)
        document = _document(rng, pk, study, patient, modality)
        series = Series(
            id=pk,
            series_instance_uid=_uid(pk, 2),
            study_pk=study["id"],
            modality=modality,
            series_number=document["00200011"]["Value"][0],
            series_description=document["0008103E"]["Value"][0],
            body_part_examined=document["00180015"]["Value"][0],
            series_date=study["study_date"],
            series_time=study["study_time"],
            number_of_instances=rng.randrange(1, 400),
            metadata_json=document,
            last_received_at=created,
            stable_at=created,
            created_at=created + timedelta(seconds=pk),
        )
        facts = SeriesFacts(series, Study(**study), Patient(**patient), document)
        values = series_values(facts)
        chunk["series"].append(
            {column.name: getattr(series, column.name) for column in Series.__table__.columns}
        )
        chunk["links"].append({"series_pk": pk, "project_pk": project_pk})
        chunk["attributes"] += [
            {
                "series_pk": pk,
                "field": v.field,
                "text_value": v.text_value,
                "number_value": v.number_value,
            }
            for v in values
        ]
        chunk["texts"].append({"series_pk": pk, "body": text_document(values)})
        if rng.random() < 0.05:
            chunk["tags"].append({"project_pk": project_pk, "series_pk": pk, "tag": "excluded"})
        if rng.random() < 0.2:
            chunk["tags"].append({"project_pk": project_pk, "series_pk": pk, "tag": "reviewed"})
        if pk % _SERIES_CHUNK == 0 or pk == series_count:
            yield chunk
            chunk = {name: [] for name in chunk}


def load(platform: Platform, series_count: int) -> tuple[float, int]:
    """Bulk-insert the synthetic archive; seconds taken and attribute rows written."""
    project_pk = platform.archive.projects.get("admin").id
    tables = [
        ("patients", Patient),
        ("studies", Study),
        ("series", Series),
        ("links", SeriesProject),
        ("attributes", SeriesAttribute),
        ("texts", SeriesText),
        ("tags", SeriesTag),
    ]
    started = time.perf_counter()
    attributes = 0
    with platform.engine.begin() as conn:
        for chunk in _rows(series_count, project_pk, seed=7):
            for name, model in tables:
                if chunk[name]:
                    conn.execute(insert(model), chunk[name])
            attributes += len(chunk["attributes"])
            _progress(f"  {chunk['series'][-1]['id']} series loaded")
    # What autovacuum does soon after a bulk load on PostgreSQL: statistics, and the visibility
    # map that lets index-only scans skip the heap. SQLite gets its statistics.
    if platform.engine.dialect.name == "postgresql":
        with platform.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with platform.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started, attributes


def _timed(samples: int, run: Callable[[int], int]) -> list[float]:
    """``run(i)`` answers how many results it found; an empty answer is a failed run."""
    run(0)  # warm caches and statement compilation
    seconds = []
    for index in range(samples):
        began = time.perf_counter()
        found = run(index)
        seconds.append(time.perf_counter() - began)
        if not found:
            raise RuntimeError(f"query {index} found nothing")
    return seconds


def measure(platform: Platform, samples: int) -> dict[str, Any]:
    catalog = platform.catalog
    project_pk = platform.archive.projects.get("admin").id
    years = list(range(2015, 2025))

    def three_filters(index: int) -> int:
        query = parse_query(
            {
                "where": {
                    "and": [
                        {"field": "Modality", "op": "=", "value": ["CT", "MR"][index % 2]},
                        {"field": "SliceThickness", "op": "<=", "value": [1.5, 2.5][index % 2]},
                        {"field": "StudyDate", "op": "=", "value": str(years[index % len(years)])},
                    ]
                },
                "sort": [{"field": "StudyDate", "order": "desc"}],
            }
        )
        return len(catalog.search(project_pk=project_pk, query=query, limit=50).items)

    facet_specs = [
        FacetSpec(field="BodyPartExamined"),
        FacetSpec(field="Manufacturer"),
        FacetSpec(field="SliceThickness", type="histogram"),
        FacetSpec(field="StudyDate", type="date_histogram", interval="month"),
        FacetSpec(field="tags"),
    ]

    def five_facets(index: int) -> int:
        modality = ["CT", "MR", "PT"][index % 3]
        query = parse_query({"where": {"field": "Modality", "op": "=", "value": modality}})
        found = catalog.facets(project_pk=project_pk, query=query, specs=facet_specs)
        return sum(b.count for b in found[0].buckets)

    def free_text(index: int) -> int:
        query = parse_query({"text": _WORDS[index % len(_WORDS)]})
        return len(catalog.search(project_pk=project_pk, query=query, limit=50).items)

    half = {"where": {"field": "Modality", "op": "in", "value": ["CT"]}}
    project = platform.archive.projects.get("admin")
    created: list[str] = []

    def dataset_from_query(index: int) -> int:
        """A snapshot dataset of the query, as ``POST .../datasets`` with ``kind=snapshot``."""
        name = f"bench-{index}-{len(created)}"
        created.append(name)
        info = platform.datasets.create_snapshot(project, name, query=half, actor="benchmark")
        return info.summary.series

    from_query = latency_summary(_timed(max(3, samples // 10), dataset_from_query))
    rows = dataset_from_query(0)
    for name in created:
        platform.datasets.delete(project, name, actor="benchmark")

    return {
        "search_3_filters": latency_summary(_timed(samples, three_filters)),
        "facets_5_fields": latency_summary(_timed(samples, five_facets)),
        "free_text": latency_summary(_timed(samples, free_text)),
        "dataset_from_query_50pct": from_query,
        "dataset_from_query_rows": rows,
    }


TARGETS_MS = {
    "search_3_filters": 50,
    "facets_5_fields": 150,
    "free_text": 100,
    "dataset_from_query_50pct": 2000,
}


def _loaded(platform: Platform) -> int:
    """Series already in the archive: a kept archive of the right size is measured as it is."""
    with platform.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Series)) or 0)


def run_engine(
    engine: str, series_count: int, samples: int, database_url: str | None, data_dir: Path
) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    with Platform(settings) as platform:
        present = _loaded(platform)
        if present not in (0, series_count):
            raise RuntimeError(
                f"{engine}: the kept archive has {present} series, not {series_count}"
            )
        if present:
            _progress(f"{engine}: {present} series kept from an earlier run")
            seconds, attributes = None, None
        else:
            _progress(f"{engine}: loading {series_count} series")
            seconds, attributes = load(platform, series_count)
        _progress(f"{engine}: measuring")
        figures = measure(platform, samples)
    case: dict[str, Any] = {
        "engine": engine,
        "series": series_count,
        "attribute_rows": attributes,
        "load_seconds": None if seconds is None else round(seconds, 1),
        **figures,
    }
    case["targets_met"] = {
        name: figures[name]["p50_ms"] <= target for name, target in TARGETS_MS.items()
    }
    return case


@contextlib.contextmanager
def kept_schema(name: str) -> Iterator[str]:
    """The URL of schema ``name`` in the tests' database, created where missing, never dropped."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
    finally:
        admin.dispose()
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{name}"


def run(engine: str, series_count: int, samples: int, keep: Path | None) -> dict[str, Any]:
    """One engine's case, in a throwaway archive or, with ``keep``, in the kept one."""
    with contextlib.ExitStack() as stack:
        if keep is None:
            folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="kaapana-bench-catalog-"))
            )
        else:
            folder = keep / f"catalog-{series_count}"
        url = None
        if engine == "postgres":
            schemas = (
                postgres_schema()
                if keep is None
                else kept_schema(f"kp_bench_catalog_{series_count}")
            )
            url = stack.enter_context(schemas)
        return run_engine(engine, series_count, samples, url, folder / engine / "data")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="10,000 series, 20 queries each")
    parser.add_argument("--only", default=",".join(ENGINES), help="sqlite,postgres or one")
    parser.add_argument("--queries", type=int, default=None, help="queries of each kind")
    parser.add_argument(
        "--keep", action="store_true", help="keep the loaded archives, reuse kept ones"
    )
    add_output_arguments(parser)
    args = parser.parse_args()
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    if not selected or set(selected) - set(ENGINES):
        parser.error(f"--only takes a comma-separated subset of {','.join(ENGINES)}")
    series_count = 10_000 if args.small else 100_000
    samples = args.queries or (20 if args.small else 50)
    report = Report(
        "catalog",
        environment={**tool_versions(), "series": series_count, "targets_p50_ms": TARGETS_MS},
    )
    for engine in selected:
        keep = args.cache_dir if args.keep else None
        try:
            report.cases.append(run(engine, series_count, samples, keep))
        except Exception as exc:  # one engine failing still reports the other
            report.errors.append(f"{engine}: {exc!r}")
    report.emit(args.out)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
