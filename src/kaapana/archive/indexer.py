"""The journal indexer: commits what the receivers acknowledged, in the process that owns the index.

Receiver processes only inspect, store, journal and acknowledge. Describing an object (index
columns, DICOM JSON) and the SQL happen here, in another process, so a receiver's GIL serves
the network and the indexer's work overlaps the next object's transfer. The indexer follows
every journal in the data dir: settled entries are indexed in batches as they appear, entries
of a writer that died are indexed whole (as at start-up, see ``Archive.recover``), and a
journal is deleted once it is ended or its writer is gone and all of it is committed.
"""

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kaapana.archive.journal import JournalEntry, JournalReader, all_journals

log = logging.getLogger(__name__)
# How often other processes' journals are read: entries that arrive meanwhile share one commit.
POLL_SECONDS = 0.02
RETRY_SECONDS = 1.0
MAX_ATTEMPTS = 5


class JournalIndexer:
    """One thread that follows the journals and hands batches of entries to ``index``."""

    def __init__(
        self, directory: Path, index: Callable[[list[JournalEntry]], None], *, batch_size: int
    ) -> None:
        self._directory = directory
        self._index = index
        self._batch_size = batch_size
        self._readers: dict[Path, JournalReader] = {}
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="kaapana-indexer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something was journaled in this process: look now instead of at the next poll."""
        self._wake.set()

    def flush(self) -> None:
        """Return once everything settled in any journal before the call is committed."""
        with self._cond:
            self._requested += 1
            target = self._requested
            self._wake.set()
            while self._completed < target and self._thread.is_alive():
                self._cond.wait(0.5)

    def close(self) -> None:
        """Index what is left (a final pass), then stop."""
        self.flush()
        self._stopping = True
        self._wake.set()
        self._thread.join()
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def _run(self) -> None:
        while not self._stopping:
            with self._cond:
                generation = self._requested
            try:
                busy = self._pass()
            except Exception:
                log.exception("indexing journaled objects failed; retrying")
                time.sleep(RETRY_SECONDS)
                continue
            if not busy:
                with self._cond:
                    self._completed = max(self._completed, generation)
                    self._cond.notify_all()
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _pass(self) -> bool:
        """Read every journal once and index what is ready; True if anything happened."""
        for path in all_journals(self._directory):
            if path not in self._readers:
                try:
                    self._readers[path] = JournalReader(path)
                except FileNotFoundError:  # deleted by start-up recovery in between
                    continue
        busy = False
        for path, reader in list(self._readers.items()):
            busy |= reader.read()
            whole = reader.ended or not reader.writer_alive()
            while ready := reader.ready(all_entries=whole):
                batch = ready[: self._batch_size]
                self._index_with_retries(batch)
                reader.done(len(batch))
                busy = True
            if reader.finished:
                reader.close()
                path.unlink(missing_ok=True)
                del self._readers[path]
        return busy

    def _index_with_retries(self, batch: list[JournalEntry]) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                self._index(batch)
                return
            except Exception:
                if attempt == MAX_ATTEMPTS:
                    log.exception(
                        "%d journaled objects could not be indexed; `kaapana check` will",
                        len(batch),
                    )
                    return
                log.warning("indexing %d journaled objects failed; retrying", len(batch))
                time.sleep(RETRY_SECONDS)


__all__ = ["JournalIndexer"]
