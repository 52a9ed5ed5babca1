"""Ingest benchmark: how fast kaapana takes in DICOM, against Orthanc, a bare pynetdicom
receiver and a plain copy, on the same files in the same run.

The issue's targets are ratios, not absolute numbers, because absolute numbers depend on the
machine: kaapana must keep up with Orthanc (over 4 associations with 512x512 CT), stay within
10 % of the bare receiver over one association, and import files at 70 % of `cp -r`'s rate.
DCMTK's storescu is the sender for every receiver, so the client side is identical; each timed
run gets a freshly started receiver with an empty data folder, and counts what arrived after
the clients exit, because a run that lost objects must not look fast.

Usage: ``python benchmarks/ingest.py [--quick] [--only kaapana,orthanc,bare,import]
[--repeat N] [--out FILE]``; JSON goes to stdout (and FILE), progress to stderr.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset

from _common import (
    KAAPANA,
    MB,
    SHARDS,
    BareReceiver,
    FileSet,
    Kaapana,
    Orthanc,
    Report,
    Server,
    add_output_arguments,
    cached_file_set,
    count_kaapana_instances,
    kaapana_settings,
    median,
    run_clients,
    storescu_command,
    tool_versions,
    wait_for_instances,
)
from kaapana.testing.synthetic import ct_series

RECEIVERS = ("kaapana", "orthanc", "bare")
SELECTABLE = (*RECEIVERS, "import")
ASSOCIATIONS = (1, SHARDS)
SERIES_LIMIT = 1000  # the small objects come as several series, like a real mixed load
CLIENT_TIMEOUT = 1800.0
IMPORT_TIMEOUT = 1800.0
INDEX_TIMEOUT = 300.0


@dataclass(frozen=True)
class ObjectKind:
    """One of the two loads: few large objects (bandwidth) or many small ones (per-object cost)."""

    key: str
    label: str
    make: Callable[[int], Iterator[list[Dataset]]]


def _large_ct(count: int) -> Iterator[list[Dataset]]:
    yield ct_series(
        patient_id="BENCH-CT",
        rows=512,
        columns=512,
        slices=count,
        pixel_spacing=0.8,
        slice_thickness=1.0,
        seed=1,
    )


def _small_ct(count: int) -> Iterator[list[Dataset]]:
    for index, start in enumerate(range(0, count, SERIES_LIMIT)):
        yield ct_series(
            patient_id=f"BENCH-SMALL-{index + 1:02d}",
            rows=64,
            columns=64,
            slices=min(SERIES_LIMIT, count - start),
            seed=100 + index,
        )


LARGE = ObjectKind("ct512", "CT 512x512x16", _large_ct)
SMALL = ObjectKind("ct64", "CT 64x64x16", _small_ct)


@dataclass
class Measured:
    """All repeats of one case; the median is reported, the single runs show the spread."""

    receiver: str
    associations: int | None
    kind: ObjectKind
    files: FileSet
    runs: list[float]
    lags: list[float]

    def as_case(self) -> dict[str, object]:
        seconds = median(self.runs)
        return {
            "receiver": self.receiver,
            "associations": self.associations,
            "objects": self.files.files,
            "object_size": self.kind.label,
            "bytes_per_object": round(self.files.bytes / self.files.files),
            "seconds": round(seconds, 3),
            "instances_per_s": round(self.files.files / seconds, 1),
            "mb_per_s": round(self.files.bytes / MB / seconds, 2),
            "runs": [round(run, 3) for run in self.runs],
            "indexed_after_s": round(median(self.lags), 3),
        }

    @property
    def rate(self) -> float:
        return self.files.files / median(self.runs)


def _progress(message: str) -> None:
    print(f"[ingest {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _server(receiver: str) -> Server:
    if receiver == "kaapana":
        return Kaapana()
    if receiver == "orthanc":
        return Orthanc()
    return BareReceiver(kaapana_settings().max_pdu_size)


def store_run(receiver: str, files: FileSet, associations: int) -> tuple[float, float]:
    """One timed storescu run into a fresh receiver (1 client for everything, or one client
    per shard); returns the clients' seconds and the lag until every object was indexed."""
    inputs = [[files.root]] if associations == 1 else [[shard] for shard in files.shards]
    with _server(receiver) as server:
        commands = [storescu_command(server.dicom_port, server.ae_title, part) for part in inputs]
        seconds = run_clients(commands, CLIENT_TIMEOUT)
        lag = wait_for_instances(server, files.files, INDEX_TIMEOUT)
    return seconds, lag


def _timed(command: list[str], cwd: Path) -> float:
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        result = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=IMPORT_TIMEOUT,
            check=False,
        )
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{command[0]} exited {result.returncode}: {output}")
    return seconds


def import_run(files: FileSet) -> tuple[float, float]:
    """`kaapana import` into a fresh data dir, the whole command timed as a user would see it."""
    with tempfile.TemporaryDirectory(prefix="kaapana-bench-import-") as work:
        data_dir = Path(work, "data")
        seconds = _timed(
            [str(KAAPANA), "--data-dir", str(data_dir), "import", str(files.root)], Path(work)
        )
        imported = count_kaapana_instances(data_dir)
    if imported != files.files:
        raise RuntimeError(f"kaapana import indexed {imported} of {files.files} files")
    return seconds, 0.0


def copy_run(files: FileSet) -> tuple[float, float]:
    """`cp -r` to a fresh folder on the same file system: the speed limit of moving files."""
    with tempfile.TemporaryDirectory(prefix="kaapana-bench-cp-") as work:
        target = Path(work, "copy")
        seconds = _timed(["cp", "-r", str(files.root), str(target)], Path(work))
        copied = sum(1 for path in target.rglob("*") if path.is_file())
    if copied != files.files:
        raise RuntimeError(f"cp -r copied {copied} of {files.files} files")
    return seconds, 0.0


def _ratios(report: Report, results: dict[tuple[str, int | None, str], Measured]) -> None:
    def ratio(
        name: str, a: tuple[str, int | None, str], b: tuple[str, int | None, str], target: float
    ) -> None:
        if a in results and b in results:
            report.ratio(name, results[a].rate, results[b].rate, target)

    ratio(
        "kaapana/orthanc, 4 associations, CT 512x512",
        ("kaapana", 4, "ct512"),
        ("orthanc", 4, "ct512"),
        1.0,
    )
    ratio(
        "kaapana/bare, 1 association, CT 512x512",
        ("kaapana", 1, "ct512"),
        ("bare", 1, "ct512"),
        0.9,
    )
    ratio("kaapana/bare, 1 association, CT 64x64", ("kaapana", 1, "ct64"), ("bare", 1, "ct64"), 0.9)
    for associations in ASSOCIATIONS:
        plural = "s" if associations > 1 else ""
        ratio(
            f"kaapana/orthanc, {associations} association{plural}, CT 64x64",
            ("kaapana", associations, "ct64"),
            ("orthanc", associations, "ct64"),
            1.0,
        )
    for kind in (LARGE, SMALL):
        ratio(
            f"import/cp, {kind.label}",
            ("kaapana-import", None, kind.key),
            ("cp", None, kind.key),
            0.7,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 CT + 500 small objects")
    parser.add_argument(
        "--only",
        default=",".join(SELECTABLE),
        help=f"comma-separated subset of {','.join(SELECTABLE)}",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per case (default 3; 1 with --quick); the median is reported",
    )
    add_output_arguments(parser)
    args = parser.parse_args()
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(SELECTABLE))
    if unknown:
        parser.error(f"unknown --only entries: {', '.join(unknown)}")
    repeat = args.repeat or (1 if args.quick else 3)
    counts = {LARGE.key: 100, SMALL.key: 500} if args.quick else {LARGE.key: 1000, SMALL.key: 5000}

    report = Report("ingest", environment={**tool_versions(), "repeat": repeat})
    file_sets = []
    for kind in (LARGE, SMALL):
        count = counts[kind.key]
        _progress(f"preparing {count} x {kind.label} in {args.cache_dir}")
        file_sets.append(
            (
                kind,
                cached_file_set(
                    args.cache_dir,
                    f"{kind.key}-{count}",
                    lambda kind=kind, count=count: kind.make(count),
                ),
            )
        )

    results: dict[tuple[str, int | None, str], Measured] = {}

    def measure(
        key: tuple[str, int | None, str],
        kind: ObjectKind,
        files: FileSet,
        run: Callable[[], tuple[float, float]],
    ) -> None:
        name = f"{key[0]} x{key[1] or '-'} {kind.label}"
        try:
            seconds, lag = run()
        except Exception as exc:
            report.errors.append(f"{name}: {exc}")
            _progress(f"{name}: FAILED {exc}")
            return
        indexed = f", all indexed {lag:.2f} s later" if key[1] is not None else ""
        _progress(f"{name}: {seconds:.2f} s ({files.files / seconds:.0f} objects/s){indexed}")
        if key not in results:
            results[key] = Measured(key[0], key[1], kind, files, [], [])
        results[key].runs.append(seconds)
        results[key].lags.append(lag)

    # Repeats outermost, so slow drift on the machine spreads over all cases alike.
    for _ in range(repeat):
        for kind, files in file_sets:
            for receiver in RECEIVERS:
                if receiver in selected:
                    for associations in ASSOCIATIONS:
                        measure(
                            (receiver, associations, kind.key),
                            kind,
                            files,
                            lambda r=receiver, f=files, a=associations: store_run(r, f, a),
                        )
            if "import" in selected:
                measure(
                    ("kaapana-import", None, kind.key), kind, files, lambda f=files: import_run(f)
                )
                measure(("cp", None, kind.key), kind, files, lambda f=files: copy_run(f))

    report.cases = [measured.as_case() for measured in results.values()]
    _ratios(report, results)
    report.emit(args.out)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
