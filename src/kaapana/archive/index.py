"""The index writer: one thread per process that commits received instances in groups.

A receiving thread hands over a parsed record and waits for its future; the writer takes whatever
has queued up (up to ``batch_size``) and writes it in ONE transaction. With several associations
the commit cost is shared, which keeps SQLite from collapsing under one-commit-per-object, and a
success status still means "in the index" (the future resolves only after the commit).
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kaapana.archive.metadata import DescribedObject, InstanceRecord, ReceivedObject, describe
from kaapana.db.engine import write_transaction
from kaapana.db.models import (
    DatasetSeries,
    Instance,
    Patient,
    Series,
    SeriesProject,
    Study,
    utcnow,
)

log = logging.getLogger(__name__)
_CACHE_LIMIT = 50_000
# Instance columns filled straight from the record's attributes of the same name.
_INSTANCE_COLUMNS = (
    "sop_instance_uid",
    "sop_class_uid",
    "instance_number",
    "storage_key",
    "size",
    "sha256",
    "transfer_syntax_uid",
    "number_of_frames",
)


@dataclass(frozen=True, slots=True)
class IndexRequest:
    """``after_commit(outcome, error)`` runs in the writer before the request's future resolves."""

    received: ReceivedObject | DescribedObject
    project_pk: int
    dataset_pk: int | None = None
    after_commit: "Callable[[IndexOutcome | None, BaseException | None], None] | None" = None


class StoreStatusValues(StrEnum):
    stored = "stored"
    duplicate = "duplicate"
    replaced = "replaced"
    acknowledged = "acknowledged"  # durable and journaled; indexed with the next group commit


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    """What the commit changed: ``previous_storage_key`` names a file the new object displaced."""

    status: StoreStatusValues
    previous_storage_key: str | None = None


_INSTANCES = Instance.__table__
_SERIES = Series.__table__
_SELECT_EXISTING = select(
    _INSTANCES.c.sop_instance_uid,
    _INSTANCES.c.id,
    _INSTANCES.c.sha256,
    _INSTANCES.c.storage_key,
    _INSTANCES.c.series_pk,
).where(_INSTANCES.c.sop_instance_uid.in_(bindparam("uids", expanding=True)))
_INSERT_INSTANCE = insert(_INSTANCES)
_UPDATE_INSTANCE = (
    update(_INSTANCES)
    .where(_INSTANCES.c.id == bindparam("pk"))
    .values(
        {
            column: bindparam(f"new_{column}", type_=_INSTANCES.c[column].type)
            for column in (*_INSTANCE_COLUMNS, "series_pk", "metadata_json", "received_at")
        }
    )
)
_COUNT_SERIES = (
    update(_SERIES)
    .where(_SERIES.c.id == bindparam("pk"))
    .values(
        number_of_instances=select(func.count(_INSTANCES.c.id))
        .where(_INSTANCES.c.series_pk == bindparam("pk"))
        .scalar_subquery(),
        last_received_at=bindparam("now"),
        stable_at=None,
    )
)


def _instance_values(record: InstanceRecord, series_pk: int, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {column: getattr(record, column) for column in _INSTANCE_COLUMNS}
    values.update(series_pk=series_pk, metadata_json=record.instance_json, received_at=now)
    return values


def _insert(session: Session) -> Callable[..., Any]:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


class IndexWriter:
    def __init__(self, engine: Engine, *, batch_size: int = 256, batch_delay: float = 0.0) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._batch_delay = batch_delay
        self._queue: queue.SimpleQueue[tuple[IndexRequest, Future[IndexOutcome]] | None] = (
            queue.SimpleQueue()
        )
        self._pending: dict[str, str] = {}
        self._pending_lock = threading.Lock()
        self._patients: dict[tuple[str, str], int] = {}
        self._studies: dict[str, int] = {}
        self._series: dict[str, int] = {}
        self._visible: set[tuple[int, int]] = set()
        self._write_lock = threading.Lock()  # the caches above belong to one writer at a time
        self._thread = threading.Thread(target=self._run, name="kaapana-index-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def pending_sha256(self, sop_instance_uid: str) -> str | None:
        """The checksum of an object of this UID waiting for its commit, if any."""
        with self._pending_lock:
            return self._pending.get(sop_instance_uid)

    def submit(self, request: IndexRequest) -> "Future[IndexOutcome]":
        if self._closed:
            raise RuntimeError("the index writer is closed")
        future: Future[IndexOutcome] = Future()
        with self._pending_lock:
            self._pending[request.received.sop_instance_uid] = request.received.sha256
        self._queue.put((request, future))
        return future

    def write(self, requests: list[IndexRequest]) -> list[IndexOutcome]:
        """Commit ``requests`` now, in the caller's thread, as one group commit.

        For a caller that gathers its own batches (the journal indexer, import): no hand-over
        to the writer thread and back. Raises the first error if any object was not indexed.
        """
        batch: list[tuple[IndexRequest, Future[IndexOutcome]]] = [
            (request, Future()) for request in requests
        ]
        with self._write_lock:
            self._commit(batch)
        return [future.result() for _, future in batch]

    def close(self) -> None:
        """Commit what is queued, then stop (called on shutdown, so nothing accepted is lost)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        """Commit whatever has queued; while one commit runs, the next batch gathers by itself."""
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            if self._batch_delay:
                time.sleep(self._batch_delay)
            while len(batch) < self._batch_size:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            with self._write_lock:
                self._commit(batch)

    def _commit(self, batch: list[tuple[IndexRequest, "Future[IndexOutcome]"]]) -> None:
        try:
            outcomes = self._write([request for request, _ in batch])
        except Exception:
            log.warning("group commit of %d instances failed; writing one by one", len(batch))
            for request, future in batch:
                try:
                    self._resolve([(request, future)], self._write([request]))
                except Exception as exc:
                    log.exception("indexing %s failed", request.received.sop_instance_uid)
                    self._done(request, None, exc)
                    future.set_exception(exc)
            return
        self._resolve(batch, outcomes)

    def _resolve(
        self,
        batch: list[tuple[IndexRequest, "Future[IndexOutcome]"]],
        outcomes: list[IndexOutcome],
    ) -> None:
        for (request, future), outcome in zip(batch, outcomes, strict=True):
            self._done(request, outcome, None)
            future.set_result(outcome)

    def _done(
        self, request: IndexRequest, outcome: IndexOutcome | None, error: BaseException | None
    ) -> None:
        if request.after_commit is not None:
            try:
                request.after_commit(outcome, error)
            except Exception:
                log.exception("after-commit step of %s failed", request.received.sop_instance_uid)
        with self._pending_lock:
            uid = request.received.sop_instance_uid
            if self._pending.get(uid) == request.received.sha256:
                del self._pending[uid]

    def _forget_cache(self) -> None:
        self._patients.clear()
        self._studies.clear()
        self._series.clear()
        self._visible.clear()

    def _write(self, requests: list[IndexRequest]) -> list[IndexOutcome]:
        if len(self._series) > _CACHE_LIMIT:
            self._forget_cache()
        try:
            return self._write_batch(requests)
        except Exception:
            self._forget_cache()  # it may name rows that were rolled back
            raise

    def _write_batch(self, requests: list[IndexRequest]) -> list[IndexOutcome]:
        # Described before the transaction starts, so the write lock is held only for writing.
        records = [describe(request.received) for request in requests]
        now = utcnow()
        with write_transaction(self._engine) as session:
            conn = session.connection()
            existing = {
                row.sop_instance_uid: row
                for row in conn.execute(
                    _SELECT_EXISTING, {"uids": [record.sop_instance_uid for record in records]}
                )
            }
            inserts: dict[str, dict[str, Any]] = {}
            touched: set[int] = set()
            outcomes = []
            for request, record in zip(requests, records, strict=True):
                series_pk = self._series_pk(session, record)
                touched.add(series_pk)
                values = _instance_values(record, series_pk, now)
                previous = existing.get(record.sop_instance_uid)
                if record.sop_instance_uid in inserts or previous is None:
                    inserts[record.sop_instance_uid] = values  # new (a repeat in one batch wins)
                    outcomes.append(IndexOutcome(StoreStatusValues.stored))
                elif previous.sha256 == record.sha256:
                    log.info("SOP Instance %s received again, identical", record.sop_instance_uid)
                    outcomes.append(IndexOutcome(StoreStatusValues.duplicate))
                else:
                    update_values = {f"new_{column}": value for column, value in values.items()}
                    conn.execute(_UPDATE_INSTANCE, {**update_values, "pk": previous.id})
                    touched.add(previous.series_pk)
                    moved = (
                        previous.storage_key if previous.storage_key != record.storage_key else None
                    )
                    log.info("replaced SOP Instance %s", record.sop_instance_uid)
                    outcomes.append(IndexOutcome(StoreStatusValues.replaced, moved))
                self._make_visible(session, series_pk, request)
            if inserts:
                conn.execute(_INSERT_INSTANCE, list(inserts.values()))
            conn.execute(_COUNT_SERIES, [{"pk": pk, "now": now} for pk in touched])
        return outcomes

    def _get_or_create(
        self, session: Session, model: Any, key: dict[str, Any], values: dict[str, Any]
    ) -> int:
        query = select(model.id).filter_by(**key)
        pk = session.scalar(query)
        if pk is None:
            session.execute(
                _insert(session)(model).values(**key, **values).on_conflict_do_nothing()
            )
            pk = session.scalar(query)
        return int(pk)

    def _series_pk(self, session: Session, record: InstanceRecord) -> int:
        pk = self._series.get(record.series_instance_uid)
        if pk is not None:
            return pk
        patient_key = (record.patient_id, record.issuer_of_patient_id)
        patient_pk = self._patients.get(patient_key)
        if patient_pk is None:
            patient_pk = self._get_or_create(
                session,
                Patient,
                {
                    "patient_id": record.patient_id,
                    "issuer_of_patient_id": record.issuer_of_patient_id,
                },
                {
                    "patient_name": record.patient_name,
                    "patient_birth_date": record.patient_birth_date,
                    "patient_sex": record.patient_sex,
                },
            )
            self._patients[patient_key] = patient_pk
        study_pk = self._studies.get(record.study_instance_uid)
        if study_pk is None:
            study_pk = self._get_or_create(
                session,
                Study,
                {"study_instance_uid": record.study_instance_uid},
                {
                    "patient_pk": patient_pk,
                    "study_date": record.study_date,
                    "study_time": record.study_time,
                    "accession_number": record.accession_number,
                    "study_id": record.study_id,
                    "study_description": record.study_description,
                    "referring_physician_name": record.referring_physician_name,
                    "created_at": utcnow(),
                },
            )
            self._studies[record.study_instance_uid] = study_pk
        pk = self._get_or_create(
            session,
            Series,
            {"series_instance_uid": record.series_instance_uid},
            {
                "study_pk": study_pk,
                "modality": record.modality,
                "series_number": record.series_number,
                "series_description": record.series_description,
                "body_part_examined": record.body_part_examined,
                "series_date": record.series_date,
                "series_time": record.series_time,
                "number_of_instances": 0,
                "metadata_json": record.series_json,
                "last_received_at": utcnow(),
                "created_at": utcnow(),
            },
        )
        self._series[record.series_instance_uid] = pk
        return pk

    def _make_visible(self, session: Session, series_pk: int, request: IndexRequest) -> None:
        if (series_pk, request.project_pk) not in self._visible:
            session.execute(
                _insert(session)(SeriesProject)
                .values(series_pk=series_pk, project_pk=request.project_pk)
                .on_conflict_do_nothing()
            )
            self._visible.add((series_pk, request.project_pk))
        if request.dataset_pk is not None:
            session.execute(
                _insert(session)(DatasetSeries)
                .values(dataset_pk=request.dataset_pk, series_pk=series_pk)
                .on_conflict_do_nothing()
            )


__all__ = ["IndexOutcome", "IndexRequest", "IndexWriter", "StoreStatusValues"]
