"""``Archive``: the one entry to storing DICOM objects, whichever interface received them."""

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, or_, select, text

from kaapana.archive.index import IndexOutcome, IndexRequest, IndexWriter, StoreStatusValues
from kaapana.archive.indexer import JournalIndexer
from kaapana.archive.journal import Journal, JournalEntry, JournalReader, all_journals
from kaapana.archive.metadata import DescribedObject, ReceivedObject, inspect
from kaapana.auth.projects import ADMIN_PROJECT, Projects
from kaapana.config import DuplicatePolicyValues, Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, Study
from kaapana.errors import Conflict, InvalidDicom, NotFound
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """Where received objects become visible: a project and optionally one of its datasets."""

    project_pk: int
    dataset_pk: int | None = None


@dataclass(frozen=True, slots=True)
class StoreResult:
    status: StoreStatusValues
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str


class Archive:
    """Stores and indexes objects.

    ``indexes_journals`` marks the process that owns the index (the server's main process, a
    command, a test): it runs the journal indexer once anything is journaled (or
    ``index_journals`` is called). Receiver processes pass False: they journal, and the owner
    indexes.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        store: ObjectStore,
        indexes_journals: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.projects = Projects(engine)
        self._sessions = session_factory(engine)
        self._writer: IndexWriter | None = None
        self.journal_dir = settings.data_dir / "journal"
        self._journal: Journal | None = None
        self._indexes_journals = indexes_journals
        self._indexer: JournalIndexer | None = None
        self._lock = threading.Lock()

    def target(self, project: str = ADMIN_PROJECT, dataset: str | None = None) -> StoreTarget:
        """Resolve names once per association or import, not once per object."""
        resolved = self.projects.get(project)
        dataset_pk = self.projects.ensure_dataset(resolved, dataset) if dataset else None
        return StoreTarget(project_pk=resolved.id, dataset_pk=dataset_pk)

    def _index_writer(self) -> IndexWriter:
        """Created on first use: receiver processes never index and need no writer thread."""
        with self._lock:
            if self._writer is None:
                self._writer = IndexWriter(
                    self.engine,
                    batch_size=self.settings.index_batch_size,
                    batch_delay=self.settings.index_batch_delay,
                )
            return self._writer

    def stored_sha256(self, sop_instance_uid: str) -> str | None:
        pending = self._writer.pending_sha256(sop_instance_uid) if self._writer else None
        if pending is not None:
            return pending
        with self._sessions() as session:
            return session.scalar(
                select(Instance.sha256).where(Instance.sop_instance_uid == sop_instance_uid)
            )

    def _journal_for_writes(self) -> Journal:
        with self._lock:
            if self._journal is None:
                self._journal = Journal(self.journal_dir)
            return self._journal

    def index_journals(self) -> None:
        """Index, in this process, what any receiver journals (idempotent)."""
        self._journal_indexer()

    def _journal_indexer(self) -> JournalIndexer:
        with self._lock:
            if self._indexer is None:
                self._indexer = JournalIndexer(
                    self.journal_dir,
                    self._index_entries,
                    batch_size=self.settings.index_batch_size,
                )
            return self._indexer

    def store_bytes(
        self, data: bytes, target: StoreTarget, *, source: str = "object", wait: bool = True
    ) -> StoreResult:
        """Store one Part 10 object as received and index it.

        With ``wait`` the call returns once the index row is committed. Without it, it returns
        once the object is durable and journaled; the journal indexer commits the row moments
        later, and after a crash in between the next start does (``recover``). Raises
        ``InvalidDicom`` (nothing stored) or ``Conflict`` (duplicate refused by policy).
        """
        received = inspect(data, source=source)
        self._apply_duplicate_policy(received)
        # Identical bytes again are written again too: an atomic replace by the same content is
        # cheaper than asking the index first on every object.
        if wait:  # a caller that waits for the commit acknowledges nothing before it
            self.store.put(received.storage_key, data)
            request = IndexRequest(
                received, target.project_pk, target.dataset_pk, after_commit=self._committed
            )
            status = self._index_writer().submit(request).result().status
        else:
            self._store_journaled(received, target)
            status = StoreStatusValues.acknowledged
        return _result(received, status)

    def store_all(
        self, objects: Sequence[ReceivedObject | DescribedObject], target: StoreTarget
    ) -> list[StoreResult | Conflict]:
        """Store inspected objects with one round of syncs and one group commit for all.

        Returns, in order, each object's result or the ``Conflict`` that refused it (duplicate
        policy), once every stored object is durable and committed. Each SOP Instance UID may
        appear once; raises if the commit failed (the files are then stored but not indexed,
        which ``kaapana check`` repairs).
        """
        checked: list[ReceivedObject | DescribedObject | Conflict] = []
        for received in objects:
            try:
                self._apply_duplicate_policy(received)
            except Conflict as exc:
                checked.append(exc)
                continue
            checked.append(received)
        accepted = [item for item in checked if not isinstance(item, Conflict)]
        self.store.put_many([(received.storage_key, received.data) for received in accepted])
        requests = [
            IndexRequest(
                received, target.project_pk, target.dataset_pk, after_commit=self._committed
            )
            for received in accepted
        ]
        outcomes = iter(self._index_writer().write(requests))
        return [
            item if isinstance(item, Conflict) else _result(item, next(outcomes).status)
            for item in checked
        ]

    def _apply_duplicate_policy(self, received: ReceivedObject | DescribedObject) -> None:
        if self.settings.duplicate_policy is not DuplicatePolicyValues.reject:
            return
        previous = self.stored_sha256(received.sop_instance_uid)
        if previous not in (None, received.sha256):
            log.warning("refused other object with stored UID %s", received.sop_instance_uid)
            raise Conflict(
                f"SOP Instance {received.sop_instance_uid} is stored already with other content"
            )

    def _store_journaled(self, received: ReceivedObject, target: StoreTarget) -> None:
        """Journal first, so that the journal's fsync (a syncer thread's) overlaps the file's."""
        journal = self._journal_for_writes()
        entry = JournalEntry(received.storage_key, target.project_pk, target.dataset_pk)
        ticket = journal.record(entry)
        try:
            self.store.put(received.storage_key, received.data)
            journal.wait_durable(ticket)
        finally:
            journal.settle(entry)
        if self._indexes_journals:
            self._journal_indexer().wake()

    def _index_entries(self, entries: list[JournalEntry]) -> int:
        """Index the objects that journal entries name, as stored now; returns how many."""
        requests = []
        for entry in entries:
            try:
                data = self.store.get(entry.storage_key)
            except NotFound:
                continue  # never became durable (not acknowledged), or moved by a replacement
            try:
                received = inspect(data, source=entry.storage_key)
            except InvalidDicom as exc:
                log.error("journaled object cannot be indexed: %s", exc.detail)
                continue
            request = IndexRequest(
                received, entry.project_pk, entry.dataset_pk, after_commit=self._committed
            )
            requests.append(request)
        self._index_writer().write(requests)
        return len(requests)

    def _committed(self, outcome: IndexOutcome | None, error: BaseException | None) -> None:
        """After the group commit: drop any file the object displaced."""
        if outcome is None:
            log.error("SOP Instance stored but not indexed: %s", error)
        elif outcome.previous_storage_key:
            self.store.delete(outcome.previous_storage_key)

    def flush(self) -> None:
        """Wait until every object acknowledged so far, by any receiver, is in the index.

        Only meaningful in the process that indexes journals; elsewhere there is nothing to
        wait for (``wait=True`` stores are committed when they return).
        """
        if self._indexer is not None:
            self._indexer.flush()

    def recover(self, journals: list[Path] | None = None) -> int:
        """Index what dead processes acknowledged but did not commit; returns how many.

        ``journals`` defaults to every journal in the data dir but this process's own; call it
        before receivers start. A journal whose writer still runs is indexed but kept.
        """
        own = self._journal.path if self._journal is not None else None
        paths = [p for p in (journals or all_journals(self.journal_dir)) if p != own]
        recovered = 0
        for path in paths:
            reader = JournalReader(path)
            try:
                reader.read()
                entries = reader.ready(all_entries=True)
                for start in range(0, len(entries), self.settings.index_batch_size):
                    batch = entries[start : start + self.settings.index_batch_size]
                    recovered += self._index_entries(batch)
                    reader.done(len(batch))
                finished = reader.finished
            finally:
                reader.close()
            if finished:
                path.unlink()
        if recovered:
            log.warning("indexed %d acknowledged objects after an unclean stop", recovered)
        return recovered

    def local_paths(
        self, *, study_instance_uids: list[str], series_instance_uids: list[str]
    ) -> list[Path]:
        """Stored files of whole studies and series, in series and instance order."""
        if not (study_instance_uids or series_instance_uids):
            return []
        query = (
            select(Instance.storage_key)
            .join(Series, Instance.series_pk == Series.id)
            .join(Study, Series.study_pk == Study.id)
            .where(
                or_(
                    Study.study_instance_uid.in_(study_instance_uids),
                    Series.series_instance_uid.in_(series_instance_uids),
                )
            )
            .order_by(Series.series_number, Series.id, Instance.instance_number, Instance.id)
        )
        with self._sessions() as session:
            keys = session.scalars(query).all()
        if not keys:
            raise NotFound("no stored instances for the given study/series UIDs")
        return [Path(self.store.local_path(key) or key) for key in keys]

    def ping(self) -> None:
        """Raise if the index cannot be reached (health checks)."""
        with self._sessions() as session:
            session.execute(text("SELECT 1"))

    def close(self) -> None:
        """End this process's journal and index what is left in it; call before exit."""
        if self._journal is not None:
            self._journal.close()
        if self._indexer is not None:
            self._indexer.close()
        if self._writer is not None:
            self._writer.close()


def _result(received: ReceivedObject | DescribedObject, status: StoreStatusValues) -> StoreResult:
    about = received.record if isinstance(received, DescribedObject) else received
    return StoreResult(
        status=status,
        sop_instance_uid=about.sop_instance_uid,
        series_instance_uid=about.series_instance_uid,
        study_instance_uid=about.study_instance_uid,
        sop_class_uid=about.sop_class_uid,
    )


__all__ = ["Archive", "StoreResult", "StoreStatusValues", "StoreTarget"]
