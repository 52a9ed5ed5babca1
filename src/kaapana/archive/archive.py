"""``Archive``: the one entry to storing DICOM objects, whichever interface received them."""

import logging
import threading
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, or_, select, text

from kaapana.archive.index import IndexOutcome, IndexRequest, IndexWriter, StoreStatusValues
from kaapana.archive.journal import Journal, JournalEntry, all_journals, read_entries
from kaapana.archive.metadata import inspect
from kaapana.auth.projects import ADMIN_PROJECT, Projects
from kaapana.config import DuplicatePolicyValues, Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, Study
from kaapana.errors import Conflict, NotFound
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)
MAX_UNCOMMITTED = 128


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
    def __init__(self, *, settings: Settings, engine: Engine, store: ObjectStore) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.projects = Projects(engine)
        self._sessions = session_factory(engine)
        self._writer = IndexWriter(
            engine, batch_size=settings.index_batch_size, batch_delay=settings.index_batch_delay
        )
        self.journal_dir = settings.data_dir / "journal"
        self._journal: Journal | None = None
        self._outstanding: set[Future[IndexOutcome]] = set()
        self._lock = threading.Lock()

    def target(self, project: str = ADMIN_PROJECT, dataset: str | None = None) -> StoreTarget:
        """Resolve names once per association or import, not once per object."""
        resolved = self.projects.get(project)
        dataset_pk = self.projects.ensure_dataset(resolved, dataset) if dataset else None
        return StoreTarget(project_pk=resolved.id, dataset_pk=dataset_pk)

    def stored_sha256(self, sop_instance_uid: str) -> str | None:
        pending = self._writer.pending_sha256(sop_instance_uid)
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

    def store_bytes(
        self, data: bytes, target: StoreTarget, *, source: str = "object", wait: bool = True
    ) -> StoreResult:
        """Store one Part 10 object as received and index it.

        With ``wait`` the call returns once the index row is committed. Without it, it returns
        once the object is durable and journaled; the row follows in the next group commit, and
        a crash in between is repaired on the next start (``recover``). Raises ``InvalidDicom``
        (nothing stored) or ``Conflict`` (duplicate refused by policy).
        """
        received = inspect(data, source=source)
        if self.settings.duplicate_policy is DuplicatePolicyValues.reject:
            previous = self.stored_sha256(received.sop_instance_uid)
            if previous not in (None, received.sha256):
                log.warning("refused other object with stored UID %s", received.sop_instance_uid)
                raise Conflict(
                    f"SOP Instance {received.sop_instance_uid} is stored already with other content"
                )
        # Identical bytes again are written again too: an atomic replace by the same content is
        # cheaper than asking the index first on every object.
        self.store.put(received.storage_key, data)
        journal = None
        if not wait:  # a caller that waits for the commit acknowledges nothing before it
            journal = self._journal_for_writes()
            journal.record(JournalEntry(received.storage_key, target.project_pk, target.dataset_pk))
        request = IndexRequest(
            received,
            target.project_pk,
            target.dataset_pk,
            after_commit=partial(self._committed, journal=journal),
        )
        with self._lock:
            future = self._writer.submit(request)
            self._outstanding.add(future)
            backlog = len(self._outstanding)
        future.add_done_callback(self._forget)
        status = StoreStatusValues.acknowledged
        if wait or backlog > MAX_UNCOMMITTED:  # the backlog bound keeps memory bounded
            status = future.result().status
        return StoreResult(
            status=status,
            sop_instance_uid=received.sop_instance_uid,
            series_instance_uid=received.series_instance_uid,
            study_instance_uid=received.study_instance_uid,
            sop_class_uid=received.sop_class_uid,
        )

    def _forget(self, future: "Future[IndexOutcome]") -> None:
        with self._lock:
            self._outstanding.discard(future)

    def _committed(
        self,
        outcome: IndexOutcome | None,
        error: BaseException | None,
        *,
        journal: Journal | None,
    ) -> None:
        """After the group commit: drop the journal entry and any file the object displaced."""
        if outcome is None:
            # The file is durable; a journal entry stays, so the next start indexes it.
            log.error("SOP Instance stored but not indexed yet: %s", error)
            return
        if journal is not None:
            journal.committed()
        if outcome.previous_storage_key:
            self.store.delete(outcome.previous_storage_key)

    def flush(self) -> None:
        """Wait until every object handed over so far is committed to the index."""
        with self._lock:
            outstanding = list(self._outstanding)
        wait_for(outstanding)

    def recover(self, journals: list[Path] | None = None) -> int:
        """Index what dead processes acknowledged but did not commit; returns how many.

        ``journals`` defaults to every journal in the data dir but this process's own; call it
        before receivers start, or with the journals of one receiver that died.
        """
        own = self._journal.path if self._journal is not None else None
        paths = [p for p in (journals or all_journals(self.journal_dir)) if p != own]
        recovered = 0
        for path in paths:
            for entry in read_entries(path):
                if self._is_indexed(entry.storage_key) or not self.store.exists(entry.storage_key):
                    continue
                received = inspect(self.store.get(entry.storage_key), source=entry.storage_key)
                self._writer.submit(
                    IndexRequest(received, entry.project_pk, entry.dataset_pk)
                ).result()
                recovered += 1
            path.unlink()
        if recovered:
            log.warning("indexed %d acknowledged objects after an unclean stop", recovered)
        return recovered

    def _is_indexed(self, storage_key: str) -> bool:
        with self._sessions() as session:
            return (
                session.scalar(select(Instance.id).where(Instance.storage_key == storage_key))
                is not None
            )

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
        """Commit pending index writes; call before the process exits."""
        self._writer.close()
        if self._journal is not None:
            self._journal.close()


__all__ = ["Archive", "StoreResult", "StoreStatusValues", "StoreTarget"]
