"""Import of files, folders (recursive) and zip archives into the archive.

Non-DICOM files are skipped and counted; broken DICOM is rejected with its reason; nothing stops
the import. Files are read and stored by a small thread pool: file I/O, hashing and fsync release
the GIL, and concurrent stores share the index writer's group commits.
"""

import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from kaapana.archive.archive import Archive, StoreStatusValues, StoreTarget
from kaapana.archive.metadata import ensure_part10
from kaapana.errors import InvalidDicom, InvalidInput, KaapanaError

_MAX_IN_FLIGHT = 64


class ImportOutcomeValues(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    replaced = "replaced"
    rejected = "rejected"
    skipped = "skipped"


@dataclass(frozen=True, slots=True)
class ImportSource:
    """One candidate object: a file, or a member of a zip archive (``archive.zip!/member``)."""

    name: str
    read: Callable[[], bytes]


@dataclass
class ImportReport:
    accepted: int = 0
    duplicates: int = 0
    replaced: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + self.replaced + self.skipped + len(self.rejected)


def _zip_sources(path: Path) -> Iterator[ImportSource]:
    """Members are read here, in order: one open archive, no shared file pointer across threads."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                data = archive.read(info)
                yield ImportSource(f"{path}!/{info.filename}", lambda data=data: data)


def iter_file_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Every file under ``paths``, folders walked recursively in a stable order."""
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    yield Path(dirpath, name)
        elif path.is_file():
            yield path
        else:
            raise InvalidInput(f"'{path}' is neither a file nor a folder")


def iter_sources(paths: Iterable[Path]) -> Iterator[ImportSource]:
    """Every candidate object under ``paths``, zip members included, in a stable order."""
    for path in iter_file_paths(paths):
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            yield from _zip_sources(path)
        else:
            yield ImportSource(str(path), path.read_bytes)


def count_sources(paths: Iterable[Path]) -> int:
    """How many candidates ``iter_sources`` will yield (for a progress bar), reading no data."""
    total = 0
    for path in iter_file_paths(paths):
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                total += sum(not info.is_dir() for info in archive.infolist())
        else:
            total += 1
    return total


def _import_one(archive: Archive, source: ImportSource, target: StoreTarget) -> tuple[str, str]:
    try:
        data = source.read()
    except OSError as exc:
        return ImportOutcomeValues.rejected, f"unreadable: {exc}"
    if not (len(data) >= 132 and data[128:132] == b"DICM"):
        try:
            data = ensure_part10(data)
        except InvalidDicom:
            return ImportOutcomeValues.skipped, "not DICOM"
    try:
        result = archive.store_bytes(data, target, source=source.name)
    except KaapanaError as exc:
        return ImportOutcomeValues.rejected, exc.detail
    outcome = {
        StoreStatusValues.stored: ImportOutcomeValues.accepted,
        StoreStatusValues.duplicate: ImportOutcomeValues.duplicate,
        StoreStatusValues.replaced: ImportOutcomeValues.replaced,
    }[result.status]
    return outcome, ""


def import_paths(
    archive: Archive,
    paths: Iterable[Path],
    target: StoreTarget,
    *,
    workers: int = 4,
    on_progress: Callable[[ImportSource, str, str], None] | None = None,
) -> ImportReport:
    """Import everything under ``paths``; ``on_progress(source, outcome, reason)`` per object."""
    report = ImportReport()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kaapana-import") as pool:
        in_flight = []
        for source in iter_sources(paths):
            in_flight.append((source, pool.submit(_import_one, archive, source, target)))
            if len(in_flight) >= _MAX_IN_FLIGHT:
                _collect(in_flight.pop(0), report, on_progress)
        for item in in_flight:
            _collect(item, report, on_progress)
    return report


def _collect(
    item: tuple[ImportSource, Future[tuple[str, str]]],
    report: ImportReport,
    on_progress: Callable[[ImportSource, str, str], None] | None,
) -> None:
    source, future = item
    outcome, reason = future.result()
    if outcome == ImportOutcomeValues.accepted:
        report.accepted += 1
    elif outcome == ImportOutcomeValues.duplicate:
        report.duplicates += 1
    elif outcome == ImportOutcomeValues.replaced:
        report.replaced += 1
    elif outcome == ImportOutcomeValues.skipped:
        report.skipped += 1
    else:
        report.rejected.append((source.name, reason))
    if on_progress is not None:
        on_progress(source, outcome, reason)


__all__ = [
    "ImportOutcomeValues",
    "ImportReport",
    "ImportSource",
    "count_sources",
    "import_paths",
    "iter_file_paths",
    "iter_sources",
]
