"""Query benchmark: study-level C-FIND latency of kaapana next to Orthanc's, on 10,000 studies.

The issue's target is a p50 of at most 20 ms per study-level query, with Orthanc's figures beside
it. Latency is measured in-process with pynetdicom as the SCU: one association, then each
C-FIND request timed from sending it to its final response. That leaves out process start-up and
association setup, which would otherwise dominate and hide the servers' differences; the C-ECHO
round trip on the same association is reported as the floor that no query can beat. A smaller
run of DCMTK's findscu, one process per query, shows what a user at the command line sees: its
raw wall times and the same minus the wall time of an echoscu process (start-up and association).

Each study is one tiny Secondary Capture image (8x8 pixels): query cost depends on the number of
studies, not on their size. PatientIDs come from 1,000 patients and StudyDates spread over
2015-2024, all from a seeded generator, so the expected number of matches of every query is
known and both servers' answers are checked against it.

Usage: ``python benchmarks/query.py [--quick] [--only kaapana,orthanc] [--queries N]
[--out FILE]``; JSON goes to stdout (and FILE), progress to stderr.
"""

import argparse
import calendar
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from _common import (
    CALLING_AE,
    ECHOSCU,
    FINDSCU,
    HOST,
    KAAPANA,
    SHARDS,
    FileSet,
    Kaapana,
    Orthanc,
    Report,
    Server,
    add_output_arguments,
    cached_file_set,
    count_kaapana_instances,
    dcmtk_env,
    latency_summary,
    median,
    percentile,
    run_clients,
    storescu_command,
    tool_versions,
)
from kaapana.dicomnet.transport import no_delay, pause_reactor

SERVERS = ("kaapana", "orthanc")
FIRST_DAY = date(2015, 1, 1)
LAST_DAY = date(2024, 12, 31)
SEED = 20_240_101
BATCH = 1000
LOAD_TIMEOUT = 1800.0
TARGET_P50_MS = 20.0
WARM_UP = 5
PENDING = (0xFF00, 0xFF01)
RETURN_KEYS = (
    "PatientID",
    "PatientName",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
)


@dataclass(frozen=True)
class PlannedStudy:
    patient_id: str
    study_date: date


@dataclass(frozen=True)
class Query:
    """One C-FIND and the number of studies the generated data says it must match."""

    kind: str
    key: str
    value: str
    expected: int

    def identifier(self) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        for keyword in RETURN_KEYS:
            setattr(ds, keyword, "")
        setattr(ds, self.key, self.value)
        return ds

    def findscu_keys(self) -> list[str]:
        keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"{self.key}={self.value}"]
        for keyword in RETURN_KEYS:
            if keyword != self.key:
                keys += ["-k", keyword]
        return keys


def plan_studies(studies: int, patients: int) -> list[PlannedStudy]:
    """Who and when, decided up front so expected matches come from the plan, not a server."""
    rng = random.Random(SEED)
    span = (LAST_DAY - FIRST_DAY).days + 1
    return [
        PlannedStudy(
            patient_id=f"QP{rng.randrange(patients):05d}",
            study_date=FIRST_DAY + timedelta(days=rng.randrange(span)),
        )
        for _ in range(studies)
    ]


def _study_instance(index: int, study: PlannedStudy) -> Dataset:
    def uid(kind: str) -> str:
        return generate_uid(entropy_srcs=["kaapana-bench-query", kind, str(index)])

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = uid("instance")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientID = study.patient_id
    ds.PatientName = f"Query^{study.patient_id}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uid("study")
    ds.StudyDate = study.study_date.strftime("%Y%m%d")
    ds.StudyTime = f"{8 + index % 9:02d}{index % 60:02d}00"
    ds.AccessionNumber = f"Q{index:08d}"
    ds.StudyID = f"{index % 100_000:05d}"
    ds.StudyDescription = "Query benchmark"
    ds.ReferringPhysicianName = ""
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesInstanceUID = uid("series")
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 8
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(64)
    return ds


def _batches(plan: Sequence[PlannedStudy]) -> Iterator[list[Dataset]]:
    for start in range(0, len(plan), BATCH):
        chunk = plan[start : start + BATCH]
        yield [_study_instance(start + offset, study) for offset, study in enumerate(chunk)]


def plan_queries(plan: Sequence[PlannedStudy], count: int) -> list[Query]:
    """``count`` PatientID queries and ``count`` one-month StudyDate ranges, seeded."""
    rng = random.Random(SEED + 1)
    by_patient: dict[str, int] = {}
    for study in plan:
        by_patient[study.patient_id] = by_patient.get(study.patient_id, 0) + 1
    patients = sorted(by_patient)
    queries = []
    for _ in range(count):
        patient = rng.choice(patients)
        queries.append(Query("PatientID", "PatientID", patient, by_patient[patient]))
    for _ in range(count):
        year = rng.randint(FIRST_DAY.year, LAST_DAY.year)
        month = rng.randint(1, 12)
        first = date(year, month, 1)
        last = date(year, month, calendar.monthrange(year, month)[1])
        expected = sum(first <= study.study_date <= last for study in plan)
        value = f"{first:%Y%m%d}-{last:%Y%m%d}"
        queries.append(Query("StudyDate range", "StudyDate", value, expected))
    return queries


def _progress(message: str) -> None:
    print(f"[query {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_kaapana(server: Kaapana, files: FileSet) -> float:
    """`kaapana import` before the server starts: the fast path for filling an archive."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        result = subprocess.run(
            [str(KAAPANA), "--data-dir", str(server.data_dir), "import", str(files.root)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=LOAD_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"kaapana import failed: {log.read().decode()[-2000:]}")
    seconds = time.perf_counter() - start
    loaded = count_kaapana_instances(server.data_dir)
    if loaded != files.files:
        raise RuntimeError(f"kaapana import indexed {loaded} of {files.files} studies")
    return seconds


def load_by_storescu(server: Server, files: FileSet) -> float:
    commands = [
        storescu_command(server.dicom_port, server.ae_title, [shard]) for shard in files.shards
    ]
    seconds = run_clients(commands, LOAD_TIMEOUT)
    loaded = server.instances()
    if loaded != files.files:
        raise RuntimeError(f"{server.name} holds {loaded} of {files.files} studies")
    return seconds


def _find(assoc: Association, query: Query) -> tuple[float, int]:
    """Seconds until the final response, and the number of matches; wrong answers raise."""
    # Without this, pynetdicom's reactor can swallow a response (kaapana.dicomnet.transport), and
    # the request would hang until the server drops the association. Not part of the latency.
    pause_reactor(assoc)
    start = time.perf_counter()
    matches = 0
    final = None
    for status, _identifier in assoc.send_c_find(
        query.identifier(), StudyRootQueryRetrieveInformationModelFind
    ):
        if not status:
            raise RuntimeError(f"C-FIND {query.key}={query.value}: no response (timeout/abort)")
        if status.Status in PENDING:
            matches += 1
        else:
            final = int(status.Status)
    seconds = time.perf_counter() - start
    if final != 0x0000:
        raise RuntimeError(f"C-FIND {query.key}={query.value} ended with status {final!r}")
    if matches != query.expected:
        raise RuntimeError(
            f"C-FIND {query.key}={query.value}: {matches} matches, expected {query.expected}"
        )
    return seconds, matches


def _echo(assoc: Association) -> float:
    pause_reactor(assoc)
    start = time.perf_counter()
    status = assoc.send_c_echo()
    seconds = time.perf_counter() - start
    if not status or status.Status != 0x0000:
        raise RuntimeError("C-ECHO failed")
    return seconds


def measure_in_process(server: Server, queries: Sequence[Query]) -> list[dict[str, object]]:
    ae = AE(ae_title=CALLING_AE)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(Verification)
    ae.network_timeout = 60
    ae.dimse_timeout = 60
    assoc = ae.associate(HOST, server.dicom_port, ae_title=server.ae_title)
    if not assoc.is_established:
        raise RuntimeError(f"association with {server.name} was not accepted")
    # pynetdicom leaves Nagle on: the data set PDU would wait for the ACK of the command PDU.
    sock = assoc.dul.socket.socket if assoc.dul.socket else None
    if sock is None:
        raise RuntimeError(f"association with {server.name} has no socket")
    no_delay(sock)
    try:
        for query in queries[:WARM_UP]:
            _find(assoc, query)
        echoes = [_echo(assoc) for _ in range(len(queries) // 2)]
        timings: dict[str, list[float]] = {}
        matches: dict[str, list[int]] = {}
        for query in queries:
            seconds, found = _find(assoc, query)
            timings.setdefault(query.kind, []).append(seconds)
            matches.setdefault(query.kind, []).append(found)
    finally:
        assoc.release()
    cases: list[dict[str, object]] = [
        {
            "server": server.name,
            "method": "pynetdicom",
            "request": "C-ECHO",
            "requests": len(echoes),
            **latency_summary(echoes),
        }
    ]
    for kind, samples in timings.items():
        cases.append(
            {
                "server": server.name,
                "method": "pynetdicom",
                "request": f"C-FIND {kind}",
                "requests": len(samples),
                "mean_matches": round(sum(matches[kind]) / len(matches[kind]), 1),
                **latency_summary(samples),
            }
        )
    return cases


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=dcmtk_env(), capture_output=True, timeout=60, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {result.returncode}: {result.stderr[-500:]!r}")
    return seconds


def measure_findscu(server: Server, queries: Sequence[Query]) -> list[dict[str, object]]:
    """One DCMTK process per request, as from a shell; net = raw minus echoscu's median."""
    address = ["-aet", CALLING_AE, "-aec", server.ae_title, HOST, str(server.dicom_port)]
    echo = [_wall([str(ECHOSCU), *address]) for _ in range(len(queries) // 2)]
    baseline = median(echo)
    cases: list[dict[str, object]] = [
        {
            "server": server.name,
            "method": "echoscu process",
            "request": "C-ECHO",
            "requests": len(echo),
            **latency_summary(echo),
        }
    ]
    timings: dict[str, list[float]] = {}
    for query in queries:
        command = [str(FINDSCU), "-S", *query.findscu_keys(), *address]
        timings.setdefault(query.kind, []).append(_wall(command))
    for kind, samples in timings.items():
        net = [sample - baseline for sample in samples]
        cases.append(
            {
                "server": server.name,
                "method": "findscu process",
                "request": f"C-FIND {kind}",
                "requests": len(samples),
                **latency_summary(samples),
                "net_p50_ms": round(percentile(net, 0.50) * 1000, 2),
                "net_p95_ms": round(percentile(net, 0.95) * 1000, 2),
            }
        )
    return cases


def _interleaved(queries: Sequence[Query], count: int) -> list[Query]:
    """The first ``count`` of each kind, alternating, so no kind runs on a warmer cache."""
    by_kind: dict[str, list[Query]] = {}
    for query in queries:
        by_kind.setdefault(query.kind, []).append(query)
    rows = zip(*(kind[:count] for kind in by_kind.values()), strict=True)
    return [query for row in rows for query in row]


def _measure(
    report: Report,
    server: Server,
    load_seconds: float,
    how: str,
    queries: Sequence[Query],
    shell_queries: Sequence[Query],
) -> dict[tuple[str, str], float]:
    """Add one loaded server's cases to the report; returns its in-process p50 per request."""
    studies = server.instances()
    _progress(f"{server.name}: {studies} studies loaded in {load_seconds:.1f} s ({how})")
    report.cases.append(
        {
            "server": server.name,
            "method": how,
            "request": "load",
            "studies": studies,
            "seconds": round(load_seconds, 2),
        }
    )
    p50 = {}
    for case in measure_in_process(server, queries):
        report.cases.append(case)
        p50[(server.name, str(case["request"]))] = float(str(case["p50_ms"]))
        _progress(f"{server.name}: {case['request']} p50 {case['p50_ms']} ms")
    report.cases.extend(measure_findscu(server, shell_queries))
    return p50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 studies, 50 queries each")
    parser.add_argument("--only", default=",".join(SERVERS), help="kaapana,orthanc or one")
    parser.add_argument(
        "--queries",
        type=int,
        default=None,
        help="queries of each kind (default 200; findscu gets a quarter)",
    )
    add_output_arguments(parser)
    args = parser.parse_args()
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    if not selected or set(selected) - set(SERVERS):
        parser.error(f"--only takes a comma-separated subset of {','.join(SERVERS)}")
    studies, patients = (1_000, 100) if args.quick else (10_000, 1_000)
    count = args.queries or (50 if args.quick else 200)

    report = Report(
        "query",
        environment={**tool_versions(), "studies": studies, "patients": patients, "shards": SHARDS},
    )
    plan = plan_studies(studies, patients)
    _progress(f"preparing {studies} studies in {args.cache_dir}")
    files = cached_file_set(args.cache_dir, f"studies-{studies}", lambda: _batches(plan))
    queries = _interleaved(plan_queries(plan, count), count)
    shell_queries = _interleaved(queries, max(1, count // 4))

    p50: dict[tuple[str, str], float] = {}
    for name in selected:
        try:
            if name == "kaapana":
                kaapana = Kaapana()
                seconds = load_kaapana(kaapana, files)
                with kaapana:
                    p50.update(
                        _measure(report, kaapana, seconds, "kaapana import", queries, shell_queries)
                    )
            else:
                with Orthanc() as orthanc:
                    seconds = load_by_storescu(orthanc, files)
                    how = f"storescu, {SHARDS} associations"
                    p50.update(_measure(report, orthanc, seconds, how, queries, shell_queries))
        except Exception as exc:
            report.errors.append(f"{name}: {exc}")
            _progress(f"{name}: FAILED {exc}")

    for request in ("C-FIND PatientID", "C-FIND StudyDate range"):
        if ("kaapana", request) in p50:
            value = p50[("kaapana", request)]
            report.ratios[f"kaapana {request} p50 ms"] = {
                "value": value,
                "target": f"<= {TARGET_P50_MS:g}",
                "met": value <= TARGET_P50_MS,
            }
            if ("orthanc", request) in p50:
                report.ratio(
                    f"kaapana/orthanc p50 latency, {request}",
                    value,
                    p50[("orthanc", request)],
                    None,
                )
    report.emit(args.out)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
