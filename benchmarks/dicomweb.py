"""DICOMweb benchmark: QIDO-RS, WADO-RS and STOW-RS of kaapana, against Orthanc and `cat`.

The issue's targets: on an index of 10,000 studies and 1,000,000 instances in PostgreSQL, a
QIDO-RS study search answers within 30 ms (p50) and the metadata of a 500-instance series within
150 ms; WADO-RS delivers that series at 80 % or more of the rate at which `cat` reads its files;
STOW-RS (batches of 50 instances, 4 parallel clients) stores 1.5 times as many 512x512 CT
instances per second as Orthanc, and at least as many small ones.

Three parts, each on freshly started servers in temporary folders on random loopback ports:

* ``large``: kaapana alone on the big index, in a fresh PostgreSQL schema. The 500-instance CT
  series is imported for real (files, so WADO-RS has something to send); the other studies are
  written straight into the index by SQL, as the index writer would write them (patients,
  studies, series, ``series_projects`` links to the ``admin`` project, and per instance the DICOM
  JSON of a real instance of that series with its UIDs, numbers and bulk data URI changed).
* ``same``: kaapana (default SQLite index, `kaapana import`) and Orthanc (its DICOMweb plugin,
  SQLite index, loaded by storescu) hold the same data: that series plus 1,000 small studies
  (the query benchmark's). The same requests give the kaapana/Orthanc ratios at a size Orthanc
  loads quickly; `cat` reading the series' stored files is the WADO-RS yardstick.
* ``stow``: STOW-RS of 1,000 CT slices of 512x512 and 5,000 of 64x64 into an empty kaapana and
  an empty Orthanc, 4 client threads, 50 instances per request.

Usage: ``python benchmarks/dicomweb.py [--quick] [--only kaapana,orthanc,large,same,stow]
[--repeat N] [--queries N] [--out FILE]``; JSON goes to stdout (and FILE), progress to stderr.
"""

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydicom import Dataset
from sqlalchemy import create_engine, text

from _common import (
    MB,
    POSTGRES_URL,
    SHARDS,
    BareStow,
    FileSet,
    Kaapana,
    Orthanc,
    Report,
    add_output_arguments,
    cached_file_set,
    latency_summary,
    median,
    postgres_schema,
    run_clients,
    storescu_command,
    tool_versions,
)
from ingest import LARGE, SMALL, ObjectKind
from kaapana.auth.projects import ADMIN_PROJECT
from kaapana.dicomweb.multipart import OutgoingPart, multipart_stream, new_boundary
from kaapana.testing.synthetic import ct_series
from query import Query, plan_queries, plan_studies
from query import _batches as query_study_batches

SERVERS = ("kaapana", "orthanc", "bare", "bare2")
BARE_WORKERS = {"bare": 1, "bare2": 2}  # STOW-RS only: the Python floor, 1 and 2 processes
PARTS = ("large", "same", "stow")
DICOM = "application/dicom"
WADO_ACCEPT = f'multipart/related; type="{DICOM}"; transfer-syntax=*'
WADO_ACCEPT_PLAIN = f'multipart/related; type="{DICOM}"'
SERIES_SLICES = 500
SERIES_PATIENT = "BENCH-WADO"
SERIES_DATE = date(2024, 1, 15)  # ct_series' default StudyDate
SAME_STUDIES = 1_000  # the query benchmark's --quick set, shared through the cache
SERIES_PER_STUDY = 2
STOW_CLIENTS = SHARDS
STOW_BATCH = 50
UID_ROOT = "1.2.826.0.1.3680043.8.498.77"  # of the generated index rows; each run has its schema
FILL_CHUNK_STUDIES = 250
LOAD_TIMEOUT = 1800.0
HTTP_TIMEOUT = 600.0
WARM_UP = 3
QIDO_TARGET_MS = 30.0
METADATA_TARGET_MS = 150.0
WADO_TARGET = 0.8
STOW_TARGETS = {LARGE.key: 1.5, SMALL.key: 1.0}
FAILED_SOP_SEQUENCE = "00081198"


def _progress(message: str) -> None:
    print(f"[dicomweb {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _wado_series() -> Iterator[list[Dataset]]:
    yield ct_series(
        patient_id=SERIES_PATIENT,
        patient_name="Wado^Bench",
        study_date=SERIES_DATE,
        rows=512,
        columns=512,
        slices=SERIES_SLICES,
        pixel_spacing=0.8,
        slice_thickness=1.0,
        seed=2,
    )


@dataclass(frozen=True)
class Endpoint:
    """A DICOMweb root of a running server and what every request to it needs."""

    server: str
    root: str  # no trailing slash
    headers: dict[str, str]

    def client(self) -> httpx.Client:
        # No proxies from the environment: every request goes straight to the loopback server.
        return httpx.Client(headers=self.headers, timeout=HTTP_TIMEOUT, trust_env=False)


@dataclass(frozen=True)
class SeriesRef:
    study: str
    series: str
    files: list[Path]  # as the server stores them (kaapana) or as they were sent (Orthanc)

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def _series_ref(files: FileSet) -> SeriesRef:
    """The series' UIDs from its folder layout (patient/study/series/sop.dcm, as written by
    ``write_datasets``)."""
    paths = sorted(path for path in files.root.rglob("*.dcm"))
    study, series = paths[0].parent.parent.name, paths[0].parent.name
    return SeriesRef(study, series, paths)


def _with_series_study(queries: Sequence[Query]) -> list[Query]:
    """The real series' study sits in every index beside the planned ones: date ranges that
    contain its date match one more study."""
    adjusted = []
    for query in queries:
        if query.key == "StudyDate":
            first, last = query.value.split("-")
            if first <= SERIES_DATE.strftime("%Y%m%d") <= last:
                query = replace(query, expected=query.expected + 1)
        adjusted.append(query)
    return adjusted


def _interleaved(queries: Sequence[Query]) -> list[Query]:
    by_kind: dict[str, list[Query]] = {}
    for query in queries:
        by_kind.setdefault(query.kind, []).append(query)
    rows = zip(*by_kind.values(), strict=True)
    return [query for row in rows for query in row]


# --- the large index ------------------------------------------------------------------------


def _dicom(vr: str, value: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


_INSERT_INSTANCES = text(
    """
    INSERT INTO instances (
        sop_instance_uid, series_pk, sop_class_uid, instance_number, storage_key, size, sha256,
        transfer_syntax_uid, number_of_frames, metadata_json, received_at)
    SELECT
        u.sop, s.id, :sop_class_uid, n.n,
        'dicom/' || st.study_instance_uid || '/' || s.series_instance_uid || '/' || u.sop || '.dcm',
        :size, encode(sha256(convert_to(u.sop, 'UTF8')), 'hex'), :transfer_syntax_uid, 1,
        CAST(:template AS jsonb) || jsonb_build_object(
            '00080018', jsonb_build_object('vr', 'UI', 'Value', jsonb_build_array(u.sop)),
            '00080020', jsonb_build_object('vr', 'DA', 'Value', jsonb_build_array(st.study_date)),
            '00080021', jsonb_build_object('vr', 'DA', 'Value', jsonb_build_array(st.study_date)),
            '00080050', jsonb_build_object(
                'vr', 'SH', 'Value', jsonb_build_array(st.accession_number)),
            '00100010', jsonb_build_object('vr', 'PN', 'Value', jsonb_build_array(
                jsonb_build_object('Alphabetic', p.patient_name))),
            '00100020', jsonb_build_object('vr', 'LO', 'Value', jsonb_build_array(p.patient_id)),
            '0020000D', jsonb_build_object(
                'vr', 'UI', 'Value', jsonb_build_array(st.study_instance_uid)),
            '0020000E', jsonb_build_object(
                'vr', 'UI', 'Value', jsonb_build_array(s.series_instance_uid)),
            '00200010', jsonb_build_object('vr', 'SH', 'Value', jsonb_build_array(st.study_id)),
            '00200011', jsonb_build_object('vr', 'IS', 'Value', jsonb_build_array(s.series_number)),
            '00200013', jsonb_build_object('vr', 'IS', 'Value', jsonb_build_array(n.n)),
            '00200032', jsonb_build_object(
                'vr', 'DS', 'Value', jsonb_build_array(-204.4, -204.4, -1.0 * n.n)),
            '00201041', jsonb_build_object('vr', 'DS', 'Value', jsonb_build_array(-1.0 * n.n)),
            '7FE00010', jsonb_build_object('vr', CAST(:pixel_vr AS text), 'BulkDataURI',
                'studies/' || st.study_instance_uid || '/series/' || s.series_instance_uid
                || '/instances/' || u.sop || '/bulkdata/7FE00010')),
        :now
    FROM studies st
    JOIN patients p ON p.id = st.patient_pk
    JOIN series s ON s.study_pk = st.id
    CROSS JOIN LATERAL generate_series(1, s.number_of_instances) AS n(n)
    CROSS JOIN LATERAL (SELECT s.series_instance_uid || '.' || n.n AS sop) AS u
    WHERE st.id BETWEEN :low AND :high AND st.study_instance_uid LIKE :pattern
    """
)


def fill_index(database_url: str, studies: int, instances: int) -> dict[str, Any]:
    """Add ``studies - 1`` generated studies beside the imported series (which is the last
    one), ``SERIES_PER_STUDY`` series each, so the index holds about ``instances`` in all.

    Patients and dates follow the query benchmark's plan (10 studies per patient, 2015-2024),
    so its queries and expected match counts apply. Every row is what the index writer would
    write for such an instance: the series' and each instance's DICOM JSON are those of the
    imported series with the identifying attributes changed.
    """
    plan = plan_studies(studies - 1, max(1, studies // 10))
    per_series = max(1, round((instances - SERIES_SLICES) / (studies - 1) / SERIES_PER_STUDY))
    engine = create_engine(database_url)
    start = time.perf_counter()
    try:
        with engine.begin() as conn:
            if engine.dialect.name != "postgresql":
                raise RuntimeError("the generated index needs PostgreSQL")
            project_pk = conn.execute(
                text("SELECT id FROM projects WHERE name = :name"), {"name": ADMIN_PROJECT}
            ).scalar_one()
            real = (
                conn.execute(
                    text(
                        "SELECT i.metadata_json AS instance_json, s.metadata_json AS series_json,"
                        " i.sop_class_uid, i.size, i.transfer_syntax_uid, s.body_part_examined,"
                        " s.series_description, s.modality"
                        " FROM instances i JOIN series s ON s.id = i.series_pk"
                        " ORDER BY i.instance_number LIMIT 1"
                    )
                )
                .mappings()
                .one()
            )
            now = conn.execute(text("SELECT CAST(now() AT TIME ZONE 'UTC' AS timestamp)")).scalar()
            patients = sorted({study.patient_id for study in plan})
            conn.execute(
                text(
                    "INSERT INTO patients (patient_id, issuer_of_patient_id, patient_name,"
                    " patient_birth_date, patient_sex)"
                    " VALUES (:patient_id, '', :patient_name, '19700101', 'O')"
                ),
                [{"patient_id": pid, "patient_name": f"Query^{pid}"} for pid in patients],
            )
            patient_pks = dict(
                conn.execute(
                    text("SELECT patient_id, id FROM patients WHERE patient_id = ANY(:ids)"),
                    {"ids": patients},
                ).all()
            )
            study_rows = [
                {
                    "uid": f"{UID_ROOT}.{index + 1}",
                    "patient_pk": patient_pks[study.patient_id],
                    "study_date": study.study_date.strftime("%Y%m%d"),
                    "study_time": f"{8 + index % 9:02d}{index % 60:02d}00",
                    "accession_number": f"Q{index:08d}",
                    "study_id": f"{index % 100_000:05d}",
                    "now": now,
                }
                for index, study in enumerate(plan)
            ]
            conn.execute(
                text(
                    "INSERT INTO studies (study_instance_uid, patient_pk, study_date, study_time,"
                    " accession_number, study_id, study_description, referring_physician_name,"
                    " created_at) VALUES (:uid, :patient_pk, :study_date, :study_time,"
                    " :accession_number, :study_id, 'CT Thorax-Abdomen', 'Referrer^Demo', :now)"
                ),
                study_rows,
            )
            study_pks = dict(
                conn.execute(
                    text(
                        "SELECT study_instance_uid, id FROM studies WHERE study_instance_uid"
                        " LIKE :pattern"
                    ),
                    {"pattern": f"{UID_ROOT}.%"},
                ).all()
            )
            series_template = dict(real["series_json"])
            series_rows = []
            for row, study in zip(study_rows, plan, strict=True):
                for number in range(1, SERIES_PER_STUDY + 1):
                    uid = f"{row['uid']}.{number}"
                    document = {
                        **series_template,
                        "00080020": _dicom("DA", row["study_date"]),
                        "00080021": _dicom("DA", row["study_date"]),
                        "00080050": _dicom("SH", row["accession_number"]),
                        "00100010": _dicom("PN", {"Alphabetic": f"Query^{study.patient_id}"}),
                        "00100020": _dicom("LO", study.patient_id),
                        "0020000D": _dicom("UI", row["uid"]),
                        "0020000E": _dicom("UI", uid),
                        "00200010": _dicom("SH", row["study_id"]),
                        "00200011": _dicom("IS", number),
                    }
                    series_rows.append(
                        {
                            "uid": uid,
                            "study_pk": study_pks[row["uid"]],
                            "modality": real["modality"],
                            "number": number,
                            "description": real["series_description"],
                            "body_part": real["body_part_examined"],
                            "date": row["study_date"],
                            "time": row["study_time"],
                            "count": per_series,
                            "metadata": json.dumps(document),
                            "now": now,
                        }
                    )
            conn.execute(
                text(
                    "INSERT INTO series (series_instance_uid, study_pk, modality, series_number,"
                    " series_description, body_part_examined, series_date, series_time,"
                    " number_of_instances, metadata_json, last_received_at, stable_at,"
                    " created_at) VALUES (:uid, :study_pk, :modality, :number, :description,"
                    " :body_part, :date, :time, :count, CAST(:metadata AS jsonb), :now, :now,"
                    " :now)"
                ),
                series_rows,
            )
            conn.execute(
                text(
                    "INSERT INTO series_projects (series_pk, project_pk) SELECT id, :project"
                    " FROM series WHERE series_instance_uid LIKE :pattern"
                ),
                {"project": project_pk, "pattern": f"{UID_ROOT}.%"},
            )
        template = dict(real["instance_json"])
        pixel_vr = template.get("7FE00010", {}).get("vr", "OW")
        low, high = min(study_pks.values()), max(study_pks.values())
        for chunk in range(low, high + 1, FILL_CHUNK_STUDIES):
            with engine.begin() as conn:
                conn.execute(
                    _INSERT_INSTANCES,
                    {
                        "sop_class_uid": real["sop_class_uid"],
                        "size": real["size"],
                        "transfer_syntax_uid": real["transfer_syntax_uid"],
                        "template": json.dumps(template),
                        "pixel_vr": pixel_vr,
                        "now": now,
                        "low": chunk,
                        "high": chunk + FILL_CHUNK_STUDIES - 1,
                        "pattern": f"{UID_ROOT}.%",
                    },
                )
            done = min(high, chunk + FILL_CHUNK_STUDIES - 1) - low + 1
            if done % (FILL_CHUNK_STUDIES * 8) == 0 or done == len(study_pks):
                _progress(f"large index: {done} of {len(study_pks)} generated studies written")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            counts = conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM studies), (SELECT count(*) FROM series),"
                    " (SELECT count(*) FROM instances)"
                )
            ).one()
    finally:
        engine.dispose()
    return {
        "studies": counts[0],
        "series": counts[1],
        "instances": counts[2],
        "generate_s": round(time.perf_counter() - start, 1),
        "plan": plan,
    }


# --- servers ----------------------------------------------------------------------------------


@contextmanager
def kaapana_endpoint(
    database_url: str | None = None,
    imports: Sequence[Path] = (),
    prepare: Callable[[Kaapana], None] | None = None,
) -> Iterator[tuple[Kaapana, Endpoint]]:
    """A fresh `kaapana serve`; ``imports`` go in by `kaapana import` and ``prepare`` runs
    before it starts. Requests carry a bearer token of `admin` created the same way."""
    server = Kaapana(database_url)
    try:
        if imports:
            server.cli("import", *map(str, imports), timeout=LOAD_TIMEOUT)
        if prepare is not None:
            prepare(server)
        token = server.admin_token()
    except BaseException:
        shutil.rmtree(server.workdir, ignore_errors=True)
        raise
    with server:
        headers = {"Authorization": f"Bearer {token}"}
        yield server, Endpoint("kaapana", f"{server.http_url}/dicomweb", headers)


@contextmanager
def orthanc_endpoint() -> Iterator[tuple[Orthanc, Endpoint]]:
    with Orthanc(dicomweb=True) as server:
        yield server, Endpoint("orthanc", f"{server.http_url}/dicom-web", {})


@contextmanager
def bare_endpoint(name: str) -> Iterator[tuple[BareStow, Endpoint]]:
    with BareStow(BARE_WORKERS[name]) as server:
        yield server, Endpoint(name, server.http_url, {})


def load_orthanc(server: Orthanc, file_sets: Sequence[FileSet]) -> float:
    start = time.perf_counter()
    for files in file_sets:
        commands = [
            storescu_command(server.dicom_port, server.ae_title, [shard]) for shard in files.shards
        ]
        run_clients(commands, LOAD_TIMEOUT)
    seconds = time.perf_counter() - start
    expected = sum(files.files for files in file_sets)
    if (held := server.instances()) != expected:
        raise RuntimeError(f"orthanc holds {held} of {expected} instances")
    return seconds


# --- reads: QIDO-RS, metadata, WADO-RS ------------------------------------------------------


def _get_json(client: httpx.Client, url: str, params: dict[str, str]) -> tuple[float, Any]:
    start = time.perf_counter()
    response = client.get(url, params=params, headers={"Accept": "application/dicom+json"})
    body = response.content
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} {params}: {response.status_code} {body[:300]!r}")
    return seconds, json.loads(body)


def measure_searches(
    endpoint: Endpoint, queries: Sequence[Query], series: SeriesRef, metadata_requests: int
) -> list[dict[str, Any]]:
    """QIDO-RS study searches (each answer's size checked against the plan), then the series'
    metadata, all over one keep-alive connection, each timed until the body is read."""
    url = f"{endpoint.root}/studies"
    metadata_url = f"{url}/{series.study}/series/{series.series}/metadata"
    timings: dict[str, list[float]] = {}
    matches: dict[str, list[int]] = {}
    with endpoint.client() as client:
        for query in queries[:WARM_UP]:
            _get_json(client, url, {query.key: query.value})
        for query in queries:
            seconds, answer = _get_json(client, url, {query.key: query.value})
            if len(answer) != query.expected:
                raise RuntimeError(
                    f"{endpoint.server} QIDO {query.key}={query.value}: {len(answer)} studies,"
                    f" expected {query.expected}"
                )
            timings.setdefault(f"QIDO-RS studies, {query.kind}", []).append(seconds)
            matches.setdefault(f"QIDO-RS studies, {query.kind}", []).append(len(answer))
        _get_json(client, metadata_url, {})
        for _ in range(metadata_requests):
            seconds, answer = _get_json(client, metadata_url, {})
            if len(answer) != len(series.files):
                raise RuntimeError(
                    f"{endpoint.server} series metadata: {len(answer)} instances,"
                    f" expected {len(series.files)}"
                )
            timings.setdefault("series metadata", []).append(seconds)
            matches.setdefault("series metadata", []).append(len(answer))
    return [
        {
            "server": endpoint.server,
            "request": request,
            "requests": len(samples),
            "mean_matches": round(sum(matches[request]) / len(samples), 1),
            **latency_summary(samples),
        }
        for request, samples in timings.items()
    ]


def _wado_accept(endpoint: Endpoint, series: SeriesRef) -> str:
    """Check one full retrieval (status, parts, bytes) and settle the Accept header: any
    transfer syntax if the server takes ``transfer-syntax=*``, else its default."""
    url = f"{endpoint.root}/studies/{series.study}/series/{series.series}"
    with endpoint.client() as client:
        for accept in (WADO_ACCEPT, WADO_ACCEPT_PLAIN):
            response = client.get(url, headers={"Accept": accept})
            if response.status_code in (400, 406):
                continue
            if response.status_code != 200:
                raise RuntimeError(f"{endpoint.server} WADO-RS series: {response.status_code}")
            content_type = response.headers.get("content-type", "")
            boundary = content_type.split("boundary=")[-1].split(";")[0].strip('"')
            parts = response.content.count(b"\r\n--" + boundary.encode() + b"\r\n") + 1
            if parts != len(series.files) or len(response.content) < series.bytes:
                raise RuntimeError(
                    f"{endpoint.server} WADO-RS series: {parts} parts, {len(response.content)}"
                    f" bytes; expected {len(series.files)} parts, {series.bytes} bytes or more"
                )
            return accept
    raise RuntimeError(f"{endpoint.server} WADO-RS series: every Accept header was refused")


def measure_wado(endpoint: Endpoint, series: SeriesRef, runs: int) -> dict[str, Any]:
    """The whole series through curl into /dev/null (a C client, so the client's own cost is
    as small as cat's); seconds are curl's from the request to the last byte."""
    accept = _wado_accept(endpoint, series)
    url = f"{endpoint.root}/studies/{series.study}/series/{series.series}"
    headers = [
        arg for name, value in endpoint.headers.items() for arg in ("-H", f"{name}: {value}")
    ]
    command = [
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download} %{time_total}",
        *headers,
        "-H",
        f"Accept: {accept}",
        url,
    ]
    seconds, sizes = [], []
    for _ in range(runs):
        result = subprocess.run(command, capture_output=True, text=True, timeout=HTTP_TIMEOUT)
        status, size, total = result.stdout.split()
        if result.returncode != 0 or status != "200":
            raise RuntimeError(f"curl WADO-RS: {status} {result.stderr[-300:]}")
        seconds.append(float(total))
        sizes.append(int(size))
    return _rate_case(endpoint.server, "WADO-RS series", series, seconds, median(sizes), accept)


def measure_cat(series: SeriesRef, runs: int) -> dict[str, Any]:
    """`cat` of the stored files into /dev/null, from the page cache like the servers read."""
    command = ["cat", *map(str, series.files)]
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        seconds.append(time.perf_counter() - start)
    return _rate_case("cat", "cat series files", series, seconds, series.bytes, None)


def _rate_case(
    server: str,
    request: str,
    series: SeriesRef,
    seconds: list[float],
    size: float,
    accept: str | None,
) -> dict[str, Any]:
    middle = median(seconds)
    case = {
        "server": server,
        "request": request,
        "instances": len(series.files),
        "bytes": int(size),
        "seconds": round(middle, 4),
        "mb_per_s": round(size / MB / middle, 1),
        "runs": [round(run, 4) for run in seconds],
    }
    if accept is not None:
        case["accept"] = accept
    return case


def measure_reads(
    endpoint: Endpoint,
    queries: Sequence[Query],
    series: SeriesRef,
    metadata_requests: int,
    runs: int,
    part: str,
) -> list[dict[str, Any]]:
    measured = measure_searches(endpoint, queries, series, metadata_requests)
    measured.append(measure_wado(endpoint, series, runs))
    cases = [{"part": part, **case} for case in measured]
    for case in cases:
        figure = f"p50 {case['p50_ms']} ms" if "p50_ms" in case else f"{case['mb_per_s']} MB/s"
        _progress(f"{part}: {endpoint.server} {case['request']}: {figure}")
    return cases


def _stored_series(server: Kaapana, series: SeriesRef) -> SeriesRef:
    """The same series as kaapana keeps it: the files WADO-RS sends."""
    folder = server.data_dir / "storage" / "dicom" / series.study / series.series
    files = sorted(folder.glob("*.dcm"))
    if len(files) != len(series.files):
        raise RuntimeError(f"kaapana stores {len(files)} of the series' {len(series.files)} files")
    return replace(series, files=files)


# --- STOW-RS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StowLoad:
    kind: ObjectKind
    files: FileSet
    clients: list[list[tuple[str, bytes]]]  # per client: (boundary, body) per request


def stow_load(kind: ObjectKind, files: FileSet) -> StowLoad:
    """Each client sends one shard, 50 instances per request; bodies are built beforehand so
    the timed run measures sending and storing, not the client reading files."""
    clients = []
    for shard in files.shards:
        paths = sorted(path for path in shard.rglob("*") if path.is_file())
        requests = []
        for start in range(0, len(paths), STOW_BATCH):
            boundary = new_boundary()
            parts = [OutgoingPart(DICOM, path.read_bytes()) for path in paths[start:][:STOW_BATCH]]
            requests.append((boundary, b"".join(multipart_stream(parts, boundary=boundary))))
        clients.append(requests)
    return StowLoad(kind, files, clients)


def stow_run(endpoint: Endpoint, load: StowLoad) -> float:
    """Seconds from releasing all clients at once until the last answer; every request must
    answer 200 without failed instances."""
    url = f"{endpoint.root}/studies"
    errors: list[str] = []
    barrier = threading.Barrier(len(load.clients) + 1)

    def client(requests: list[tuple[str, bytes]]) -> None:
        with endpoint.client() as http:
            barrier.wait()
            for boundary, body in requests:
                try:
                    response = http.post(
                        url,
                        content=body,
                        headers={
                            "Content-Type": f'multipart/related; type="{DICOM}"; '
                            f"boundary={boundary}",
                            "Accept": "application/dicom+json",
                        },
                    )
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                failed = None
                if response.status_code == 200:
                    answer = response.json()  # Orthanc sends an empty FailedSOPSequence
                    failed = answer.get(FAILED_SOP_SEQUENCE, {}).get("Value")
                if response.status_code != 200 or failed:
                    errors.append(f"{response.status_code}: {response.text[:300]}")
                    return

    threads = [threading.Thread(target=client, args=(requests,)) for requests in load.clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{endpoint.server} STOW-RS: {errors[0]}")
    return seconds


def stow_case(server: str, load: StowLoad, runs: list[float]) -> dict[str, Any]:
    seconds = median(runs)
    return {
        "part": "stow",
        "server": server,
        "request": "STOW-RS",
        "clients": len(load.clients),
        "instances_per_request": STOW_BATCH,
        "objects": load.files.files,
        "object_size": load.kind.label,
        "seconds": round(seconds, 3),
        "instances_per_s": round(load.files.files / seconds, 1),
        "mb_per_s": round(load.files.bytes / MB / seconds, 2),
        "runs": [round(run, 3) for run in runs],
    }


# --- main -------------------------------------------------------------------------------------


def _debian_version(package: str) -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def _latency_target(report: Report, name: str, value: float, target: float) -> None:
    report.ratios[name] = {"value": value, "target": f"<= {target:g}", "met": value <= target}


def _ratios(report: Report) -> None:
    def find(part: str, server: str, request: str) -> dict[str, Any] | None:
        for case in report.cases:
            if (case.get("part"), case["server"], case["request"]) == (part, server, request):
                return case
        return None

    searches = ("QIDO-RS studies, PatientID", "QIDO-RS studies, StudyDate range")
    for request in searches:
        case = find("large", "kaapana", request)
        if case:
            _latency_target(
                report, f"kaapana {request} p50 ms, large index", case["p50_ms"], QIDO_TARGET_MS
            )
    case = find("large", "kaapana", "series metadata")
    if case:
        _latency_target(
            report,
            "kaapana series metadata p50 ms, large index",
            case["p50_ms"],
            METADATA_TARGET_MS,
        )
    for request in (*searches, "series metadata"):
        ours, theirs = find("same", "kaapana", request), find("same", "orthanc", request)
        if ours and theirs:
            report.ratio(
                f"kaapana/orthanc p50 latency, {request}, same index",
                ours["p50_ms"],
                theirs["p50_ms"],
                None,
            )
    for part in ("large", "same"):
        cat = find(part, "cat", "cat series files")
        for server, target in (("kaapana", WADO_TARGET), ("orthanc", None)):
            wado = find(part, server, "WADO-RS series")
            if wado and cat:
                report.ratio(
                    f"{server}/cat MB/s, WADO-RS series, {part} index",
                    wado["mb_per_s"],
                    cat["mb_per_s"],
                    target,
                )
    ours, theirs = (
        find("same", "kaapana", "WADO-RS series"),
        find("same", "orthanc", "WADO-RS series"),
    )
    if ours and theirs:
        report.ratio(
            "kaapana/orthanc MB/s, WADO-RS series, same index",
            ours["mb_per_s"],
            theirs["mb_per_s"],
            None,
        )
    for kind in (LARGE, SMALL):
        stow = {
            case["server"]: case
            for case in report.cases
            if case.get("part") == "stow" and case["object_size"] == kind.label
        }
        if "kaapana" in stow and "orthanc" in stow:
            report.ratio(
                f"kaapana/orthanc instances/s, STOW-RS {STOW_CLIENTS} clients, {kind.label}",
                stow["kaapana"]["instances_per_s"],
                stow["orthanc"]["instances_per_s"],
                STOW_TARGETS[kind.key],
            )
        for bare in BARE_WORKERS:
            for other in ("kaapana", "orthanc"):
                if bare in stow and other in stow:
                    report.ratio(
                        f"{other}/{bare} instances/s, STOW-RS {STOW_CLIENTS} clients, {kind.label}",
                        stow[other]["instances_per_s"],
                        stow[bare]["instances_per_s"],
                        None,
                    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="500 studies / 20,000 instances in the large index, 100 + 500 STOW objects",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated servers ({','.join(SERVERS)}) and/or parts ({','.join(PARTS)});"
        " default: all",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per STOW-RS case and WADO-RS retrievals (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=None,
        help="QIDO-RS searches of each kind (default 200, 50 with --quick); series metadata"
        " gets a quarter",
    )
    parser.add_argument(
        "--postgres-url", default=POSTGRES_URL, help="database of the large index's schema"
    )
    add_output_arguments(parser)
    args = parser.parse_args()
    selected = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = sorted(selected - set(SERVERS) - set(PARTS))
    if unknown:
        parser.error(f"unknown --only entries: {', '.join(unknown)}")
    servers = [name for name in SERVERS if name in selected] or list(SERVERS)
    parts = [name for name in PARTS if name in selected] or list(PARTS)
    repeat = args.repeat or (1 if args.quick else 3)
    count = args.queries or (50 if args.quick else 200)
    large_studies, large_instances = (500, 20_000) if args.quick else (10_000, 1_000_000)
    stow_counts = (
        {LARGE.key: 100, SMALL.key: 500} if args.quick else {LARGE.key: 1000, SMALL.key: 5000}
    )

    report = Report(
        "dicomweb",
        environment={
            **tool_versions(),
            "repeat": repeat,
            "queries_per_kind": count,
            "metadata_requests": max(1, count // 4),
            "large_index": f"{large_studies} studies / {large_instances} instances, PostgreSQL",
            "same_index": f"{SAME_STUDIES} studies + 1 series of {SERIES_SLICES} CT 512x512",
            "curl": subprocess.run(
                ["curl", "--version"], capture_output=True, text=True
            ).stdout.split("\n")[0],
            "httpx": httpx.__version__,
            "orthanc_dicomweb": _debian_version("orthanc-dicomweb"),
        },
    )

    def attempt(name: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception as exc:
            report.errors.append(f"{name}: {exc}")
            _progress(f"{name}: FAILED {exc}")

    _progress(f"preparing the {SERIES_SLICES}-slice CT series in {args.cache_dir}")
    series_files = cached_file_set(args.cache_dir, f"wado-ct512-{SERIES_SLICES}", _wado_series)
    series = _series_ref(series_files)
    metadata_requests = max(1, count // 4)

    def large() -> None:
        with postgres_schema(args.postgres_url) as database_url:
            facts: dict[str, Any] = {}

            def generate(_server: Kaapana) -> None:
                facts.update(fill_index(database_url, large_studies, large_instances))

            start = time.perf_counter()
            with kaapana_endpoint(database_url, [series_files.root], generate) as (server, end):
                plan = facts.pop("plan")
                report.cases.append(
                    {
                        "part": "large",
                        "server": "kaapana",
                        "request": "load",
                        "database": "postgresql",
                        **facts,
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                _progress(f"large index: {facts}")
                queries = _with_series_study(_interleaved(plan_queries(plan, count)))
                stored = _stored_series(server, series)
                report.cases.extend(
                    measure_reads(end, queries, stored, metadata_requests, repeat, "large")
                )
                report.cases.append({"part": "large", **measure_cat(stored, max(repeat, 3))})

    def same() -> None:
        plan = plan_studies(SAME_STUDIES, SAME_STUDIES // 10)
        studies = cached_file_set(
            args.cache_dir, f"studies-{SAME_STUDIES}", lambda: query_study_batches(plan)
        )
        queries = _with_series_study(_interleaved(plan_queries(plan, count)))
        for name in (name for name in servers if name not in BARE_WORKERS):
            if name == "kaapana":
                start = time.perf_counter()
                with kaapana_endpoint(None, [studies.root, series_files.root]) as (server, end):
                    report.cases.append(
                        {
                            "part": "same",
                            "server": "kaapana",
                            "request": "load",
                            "how": "kaapana import",
                            "database": "sqlite",
                            "instances": server.instances(),
                            "seconds": round(time.perf_counter() - start, 1),
                        }
                    )
                    stored = _stored_series(server, series)
                    report.cases.extend(
                        measure_reads(end, queries, stored, metadata_requests, repeat, "same")
                    )
                    report.cases.append({"part": "same", **measure_cat(stored, max(repeat, 3))})
            else:
                with orthanc_endpoint() as (server, end):
                    seconds = load_orthanc(server, [studies, series_files])
                    report.cases.append(
                        {
                            "part": "same",
                            "server": "orthanc",
                            "request": "load",
                            "how": f"storescu, {SHARDS} associations",
                            "database": "sqlite",
                            "instances": server.instances(),
                            "seconds": round(seconds, 1),
                        }
                    )
                    report.cases.extend(
                        measure_reads(end, queries, series, metadata_requests, repeat, "same")
                    )

    def stow() -> None:
        loads = []
        for kind in (LARGE, SMALL):
            number = stow_counts[kind.key]
            _progress(f"preparing {number} x {kind.label} in {args.cache_dir}")
            files = cached_file_set(
                args.cache_dir, f"{kind.key}-{number}", lambda k=kind, n=number: k.make(n)
            )
            loads.append(stow_load(kind, files))
        runs: dict[tuple[str, str], list[float]] = {}
        # Repeats outermost, so slow drift on the machine spreads over all cases alike.
        for _ in range(repeat):
            for load in loads:
                for name in servers:
                    label = f"STOW-RS {name} {load.kind.label}"
                    try:
                        opened = (
                            kaapana_endpoint()
                            if name == "kaapana"
                            else bare_endpoint(name)
                            if name in BARE_WORKERS
                            else orthanc_endpoint()
                        )
                        with opened as (server, end):
                            seconds = stow_run(end, load)
                            if (held := server.instances()) != load.files.files:
                                raise RuntimeError(f"holds {held} of {load.files.files} sent")
                    except Exception as exc:
                        report.errors.append(f"{label}: {exc}")
                        _progress(f"{label}: FAILED {exc}")
                        continue
                    rate = load.files.files / seconds
                    _progress(f"{label}: {seconds:.2f} s ({rate:.0f} instances/s)")
                    runs.setdefault((name, load.kind.key), []).append(seconds)
        for load in loads:
            for name in servers:
                if (name, load.kind.key) in runs:
                    report.cases.append(stow_case(name, load, runs[(name, load.kind.key)]))

    if "large" in parts and "kaapana" in servers:
        attempt("large index", large)
    if "same" in parts:
        attempt("same index", same)
    if "stow" in parts:
        attempt("stow", stow)

    _ratios(report)
    report.emit(args.out)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
