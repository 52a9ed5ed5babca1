"""Import of files, folders (recursive) and zip archives into the archive.

Non-DICOM files are skipped and counted; broken DICOM is rejected with its reason; nothing stops
the import. Worker processes (one per core) read, check and describe files ahead, so parsing and
DICOM JSON use every core, while the main process stores them in batches: all files of a batch
are written, then synced together, renamed into place, their folders synced once, and their
index rows written in one commit.
"""

import logging
import multiprocessing
import os
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from kaapana.archive.archive import Archive, StoreStatusValues, StoreTarget
from kaapana.archive.metadata import DescribedObject, describe, ensure_part10, inspect
from kaapana.errors import InvalidDicom, InvalidInput, KaapanaError

log = logging.getLogger(__name__)
BATCH_SIZE = 128


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
    path: Path | None = None  # a file that a worker process can read itself


@dataclass
class ImportReport:
    accepted: int = 0
    duplicates: int = 0
    replaced: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # Of every object stored, duplicates included: what the catalog indexes after the import.
    series_instance_uids: set[str] = field(default_factory=set)

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
            yield ImportSource(str(path), path.read_bytes, path)


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


def _prepare(name: str, content: Path | bytes) -> DescribedObject | tuple[str, str]:
    """Read (if ``content`` is a path), check and describe one candidate, in a worker process:
    the object to store, or its outcome (skipped, rejected)."""
    if isinstance(content, Path):
        try:
            data = content.read_bytes()
        except OSError as exc:
            return ImportOutcomeValues.rejected, f"unreadable: {exc}"
    else:
        data = content
    if not (len(data) >= 132 and data[128:132] == b"DICM"):
        try:
            data = ensure_part10(data)
        except InvalidDicom:
            return ImportOutcomeValues.skipped, "not DICOM"
    try:
        received = inspect(data, source=name)
    except InvalidDicom as exc:
        return ImportOutcomeValues.rejected, exc.detail
    return DescribedObject(received.data, describe(received))


class _InlineExecutor(Executor):
    """Runs each call at once in the calling thread; its future is done when returned."""

    def submit(  # type: ignore[override]
        self, fn: Callable[..., DescribedObject | tuple[str, str]], /, *args: object
    ) -> "Future[DescribedObject | tuple[str, str]]":
        future: Future[DescribedObject | tuple[str, str]] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future


def _submit(pool: Executor, source: ImportSource) -> "Future[DescribedObject | tuple[str, str]]":
    if source.path is not None:
        return pool.submit(_prepare, source.name, source.path)
    try:
        data = source.read()
    except OSError as exc:
        failed: Future[DescribedObject | tuple[str, str]] = Future()
        failed.set_result((ImportOutcomeValues.rejected, f"unreadable: {exc}"))
        return failed
    return pool.submit(_prepare, source.name, data)


_OUTCOMES = {
    StoreStatusValues.stored: ImportOutcomeValues.accepted,
    StoreStatusValues.duplicate: ImportOutcomeValues.duplicate,
    StoreStatusValues.replaced: ImportOutcomeValues.replaced,
}


def _store_batch(
    archive: Archive, target: StoreTarget, batch: list[tuple[ImportSource, DescribedObject]]
) -> list[tuple[str, str, str]]:
    """Outcomes of one batch (with the series' UID, empty if rejected), stored and committed
    together; one by one if the batch fails."""
    try:
        results = archive.store_all([received for _source, received in batch], target)
    except Exception:
        log.warning("storing %d objects together failed; storing them one by one", len(batch))
        results = []
        for source, received in batch:
            try:
                results.append(archive.store_bytes(received.data, target, source=source.name))
            except KaapanaError as exc:
                results.append(exc)
    return [
        (ImportOutcomeValues.rejected, result.detail, "")
        if isinstance(result, KaapanaError)
        else (_OUTCOMES[result.status], "", result.series_instance_uid)
        for result in results
    ]


def import_paths(
    archive: Archive,
    paths: Iterable[Path],
    target: StoreTarget,
    *,
    workers: int = 4,
    on_progress: Callable[[ImportSource, str, str], None] | None = None,
) -> ImportReport:
    """Import everything under ``paths``; ``on_progress(source, outcome, reason)`` per object.

    Workers read and check files ahead while the objects before them are stored in batches:
    each batch is written, synced and committed together, and its objects are reported only
    then, so the summary never counts an object that is not durable and indexed. ``workers=0``
    prepares every file in this process: a server's threads must not be forked.
    """
    report = ImportReport()
    pool: Executor
    if workers == 0:
        pool = _InlineExecutor()
    else:
        processes = max(1, min(workers, os.cpu_count() or 1))
        # fork: the workers start at once with everything imported; they touch no database.
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
    with pool:
        ahead: deque[tuple[ImportSource, Future[DescribedObject | tuple[str, str]]]] = deque()
        for source in iter_sources(paths):
            ahead.append((source, _submit(pool, source)))
            if len(ahead) >= 2 * BATCH_SIZE:
                _import_batch(archive, target, ahead, report, on_progress)
        while ahead:
            _import_batch(archive, target, ahead, report, on_progress)
    return report


def _import_batch(
    archive: Archive,
    target: StoreTarget,
    ahead: "deque[tuple[ImportSource, Future[DescribedObject | tuple[str, str]]]]",
    report: ImportReport,
    on_progress: Callable[[ImportSource, str, str], None] | None,
) -> None:
    """Take up to ``BATCH_SIZE`` prepared candidates off ``ahead`` (stopping before a SOP
    Instance UID repeats, so a later object replaces an earlier one as it would one by one),
    store them and report every outcome."""
    done: list[tuple[ImportSource, tuple[str, str] | None]] = []
    batch: list[tuple[ImportSource, DescribedObject]] = []
    uids: set[str] = set()
    while ahead and len(done) < BATCH_SIZE:
        source, future = ahead[0]
        prepared = future.result()
        if isinstance(prepared, DescribedObject):
            if prepared.sop_instance_uid in uids:
                break
            uids.add(prepared.sop_instance_uid)
            batch.append((source, prepared))
            done.append((source, None))
        else:
            done.append((source, prepared))
        ahead.popleft()
    stored = iter(_store_batch(archive, target, batch) if batch else [])
    for source, outcome in done:
        _count(report, source, *((*outcome, "") if outcome else next(stored)), on_progress)


def _count(
    report: ImportReport,
    source: ImportSource,
    outcome: str,
    reason: str,
    series_instance_uid: str,
    on_progress: Callable[[ImportSource, str, str], None] | None,
) -> None:
    if series_instance_uid:
        report.series_instance_uids.add(series_instance_uid)
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
