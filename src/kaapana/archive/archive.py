"""``Archive``: the one entry to storing DICOM objects, whichever interface received them."""

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, or_, select, text

from kaapana.archive.index import IndexRequest, IndexWriter
from kaapana.archive.metadata import parse_instance
from kaapana.auth.projects import ADMIN_PROJECT, Projects
from kaapana.config import DuplicatePolicyValues, Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, Study
from kaapana.errors import Conflict, NotFound
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)


class StoreStatusValues(StrEnum):
    stored = "stored"
    duplicate = "duplicate"
    replaced = "replaced"


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

    def store_bytes(
        self, data: bytes, target: StoreTarget, *, source: str = "object"
    ) -> StoreResult:
        """Store one Part 10 object as received and index it; returns once it is committed.

        Raises ``InvalidDicom`` (nothing stored) or ``Conflict`` (duplicate refused by policy).
        """
        record = parse_instance(data, source=source)
        previous = self.stored_sha256(record.sop_instance_uid)
        if previous == record.sha256:
            status = StoreStatusValues.duplicate
        elif previous is None:
            status = StoreStatusValues.stored
        elif self.settings.duplicate_policy is DuplicatePolicyValues.reject:
            log.warning("refused different object with existing UID %s", record.sop_instance_uid)
            raise Conflict(
                f"SOP Instance {record.sop_instance_uid} is stored already with other content"
            )
        else:
            status = StoreStatusValues.replaced
        if status is not StoreStatusValues.duplicate:
            self.store.put(record.storage_key, data)
        try:
            outcome = self._writer.submit(
                IndexRequest(record, target.project_pk, target.dataset_pk)
            ).result()
        except Exception:
            if status is StoreStatusValues.stored:
                self.store.delete(record.storage_key)
            raise
        if outcome.previous_storage_key:
            self.store.delete(outcome.previous_storage_key)
        if status is not StoreStatusValues.stored:
            log.info("%s SOP Instance %s", status.value, record.sop_instance_uid)
        return StoreResult(
            status=status,
            sop_instance_uid=record.sop_instance_uid,
            series_instance_uid=record.series_instance_uid,
            study_instance_uid=record.study_instance_uid,
        )

    def store_file(self, path: Path, target: StoreTarget) -> StoreResult:
        return self.store_bytes(path.read_bytes(), target, source=str(path))

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
        """Flush pending index writes; call before the process exits."""
        self._writer.close()


__all__ = ["Archive", "StoreResult", "StoreStatusValues", "StoreTarget"]
