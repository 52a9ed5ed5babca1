"""The receiving journal: objects acknowledged to a sender whose index rows may not be committed.

A receiver answers C-STORE once the object's file is durable and its storage key is appended
(and fsynced) here; the index row follows in the next group commit. If the process dies in
between, the next start replays the journal, so every acknowledged object ends up indexed.
One file per process; it is emptied whenever nothing is pending.
"""

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
SUFFIX = ".journal"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    storage_key: str
    project_pk: int
    dataset_pk: int | None


class Journal:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()
        self._pending = 0

    def record(self, entry: JournalEntry) -> None:
        line = f"{entry.storage_key}\t{entry.project_pk}\t{entry.dataset_pk or ''}\n".encode()
        with self._lock:
            os.write(self._fd, line)
            os.fsync(self._fd)
            self._pending += 1

    def committed(self) -> None:
        """One recorded object is in the index now; empty the file once none is pending."""
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                os.ftruncate(self._fd, 0)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
            if self._pending == 0:
                self.path.unlink(missing_ok=True)


def read_entries(path: Path) -> Iterator[JournalEntry]:
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) != 3:  # a torn last line: its object was never acknowledged
            continue
        key, project, dataset = parts
        yield JournalEntry(key, int(project), int(dataset) if dataset else None)


def journals_of_process(directory: Path, pid: int) -> list[Path]:
    return sorted(directory.glob(f"{pid}-*{SUFFIX}"))


def all_journals(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []


__all__ = ["Journal", "JournalEntry", "all_journals", "journals_of_process", "read_entries"]
