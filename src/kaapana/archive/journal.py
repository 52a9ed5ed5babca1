"""The receiving journal: objects acknowledged to a sender whose index rows may not be committed.

A receiver appends an object's storage key here *before* it writes the object, and a syncer
thread fsyncs the journal while the receiver fsyncs the object, so the two syncs overlap. Once
both are durable the receiver appends a settled line (``=key``, not synced) and answers
C-STORE. The indexer (``JournalIndexer``, in the process that owns the index) indexes settled
entries as they appear; after a crash every entry whose file exists is indexed again, so every
acknowledged object ends up indexed (an entry whose object never became durable names a missing
or older file and changes nothing).

One file per process at a time: after ``ROTATE_AFTER`` entries, at a moment when nothing is in
flight, the writer ends the file (``#end``) and starts the next; the indexer deletes a file once
it is ended (or its writer is dead) and every entry in it is committed.
"""

import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SUFFIX = ".journal"
ROTATE_AFTER = 10_000
_SETTLED = "="
_END = "#end"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    storage_key: str
    project_pk: int
    dataset_pk: int | None


def _entry_line(entry: JournalEntry) -> bytes:
    return f"{entry.storage_key}\t{entry.project_pk}\t{entry.dataset_pk or ''}\n".encode()


def _parse_entry(line: str) -> JournalEntry | None:
    parts = line.split("\t")
    if len(parts) != 3:  # a torn last line: its object was never acknowledged
        return None
    key, project, dataset = parts
    return JournalEntry(key, int(project), int(dataset) if dataset else None)


class Journal:
    """This process's journal; concurrent receivers share its fsyncs (group commit)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._sequence = 0
        self._cond = threading.Condition()
        self._written = 0  # lines appended to the current file...
        self._synced = 0  # ...and how many of them an fsync has covered
        self._in_flight = 0  # recorded, not yet settled
        self._entries = 0
        self._closed = False
        self._fd, self.path = self._open()
        self._syncer = threading.Thread(target=self._sync_loop, name="kaapana-journal", daemon=True)
        self._syncer.start()

    def _open(self) -> tuple[int, Path]:
        self._sequence += 1
        path = self.directory / f"{self._prefix}-{self._sequence:06d}{SUFFIX}"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), path

    def record(self, entry: JournalEntry) -> int:
        """Append ``entry``; returns the ticket to pass to ``wait_durable``."""
        line = _entry_line(entry)
        with self._cond:
            os.write(self._fd, line)
            self._written += 1
            self._in_flight += 1
            self._entries += 1
            self._cond.notify_all()
            return self._written

    def wait_durable(self, ticket: int) -> None:
        with self._cond:
            while self._synced < ticket:
                if self._closed:
                    raise RuntimeError("the journal is closed")
                self._cond.wait()

    def settle(self, entry: JournalEntry) -> None:
        """The receiver is done with ``entry``: its object is durable (and about to be
        acknowledged), or storing it failed. Either way the indexer may look at it now."""
        with self._cond:
            os.write(self._fd, f"{_SETTLED}{entry.storage_key}\n".encode())
            self._in_flight -= 1
            if self._in_flight == 0 and self._entries >= ROTATE_AFTER:
                self._rotate()

    def _rotate(self) -> None:
        os.write(self._fd, f"{_END}\n".encode())
        os.close(self._fd)
        self._fd, self.path = self._open()
        self._written = self._synced = self._entries = 0

    def _sync_loop(self) -> None:
        """fsync whatever was appended since the last fsync, as soon as anything was."""
        with self._cond:
            while True:
                while self._synced == self._written and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                target, fd = self._written, self._fd
                self._cond.release()
                try:
                    os.fsync(fd)
                finally:
                    self._cond.acquire()
                if fd == self._fd:  # a rotation in between restarted the count
                    self._synced = max(self._synced, target)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._syncer.join()
        with self._cond:
            os.write(self._fd, f"{_END}\n".encode())
            os.close(self._fd)


class JournalReader:
    """Follows one journal as it grows: its entries in order, and which are settled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)
        self._buffer = b""
        self.ended = False
        # Entries not committed yet, in order, each [entry, settled]; per key the unsettled ones.
        self._pending: deque[list[Any]] = deque()
        self._unsettled: dict[str, deque[list[Any]]] = {}

    @property
    def writer_pid(self) -> int:
        return int(self.path.name.split("-", 1)[0])

    def writer_alive(self) -> bool:
        try:
            os.kill(self.writer_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def finished(self) -> bool:
        """Nothing more will be appended and nothing read is left to commit."""
        return not self._pending and (self.ended or not self.writer_alive())

    def read(self) -> bool:
        """Take in what was appended since the last call; True if there was anything."""
        data = b""
        while chunk := os.read(self._fd, 1 << 20):
            data += chunk
        if not data:
            return False
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for raw in lines:
            line = raw.decode()
            if line == _END:
                self.ended = True
            elif line.startswith(_SETTLED):
                waiting = self._unsettled.get(line[len(_SETTLED) :])
                if waiting:
                    waiting.popleft()[1] = True
            elif (entry := _parse_entry(line)) is not None:
                item = [entry, False]
                self._pending.append(item)
                self._unsettled.setdefault(entry.storage_key, deque()).append(item)
        return True

    def ready(self, *, all_entries: bool) -> list[JournalEntry]:
        """The leading run of settled entries (every entry, when its writer is gone)."""
        ready = []
        for entry, settled in self._pending:
            if not (settled or all_entries):
                break
            ready.append(entry)
        return ready

    def done(self, count: int) -> None:
        """The first ``count`` entries are committed to the index."""
        for _ in range(count):
            entry, settled = self._pending.popleft()
            waiting = self._unsettled.get(entry.storage_key)
            if waiting is not None:
                if not settled:
                    waiting.popleft()
                if not waiting:
                    del self._unsettled[entry.storage_key]

    def close(self) -> None:
        os.close(self._fd)


def read_entries(path: Path) -> Iterator[JournalEntry]:
    for line in path.read_text().splitlines():
        if (entry := _parse_entry(line)) is not None:
            yield entry


def all_journals(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []


__all__ = ["Journal", "JournalEntry", "JournalReader", "all_journals", "read_entries"]
