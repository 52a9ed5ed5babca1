"""The per-series work after ``SeriesArrived``: references, thumbnail, validation.

:func:`process_arrived_series` is the work itself, free of threading, so a workflow can run it
too; it answers which series' catalog rows its results change. :class:`SeriesJobs` runs it off
the series monitor's thread on a small pool with a bounded backlog: the event bus and the ingest
path never wait for a thumbnail, a failure is logged with the SeriesInstanceUID and never raised
into the bus, and ``close`` finishes what was queued. A series dropped because the backlog was
full still gets its thumbnail and validation on first request. After each series,
``on_processed`` gets those series (the platform re-indexes them in the catalog), so this module
needs no catalog.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, select

from kaapana.archive.events import SeriesArrived
from kaapana.catalog.references import record_references, referencing_series, stored_references
from kaapana.catalog.thumbnails import make_series_thumbnail
from kaapana.catalog.validation import validate_series
from kaapana.db.engine import write_transaction
from kaapana.db.models import Series
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_WORKERS: Final = 1
DEFAULT_MAX_PENDING: Final = 10_000


@dataclass(frozen=True, slots=True)
class SeriesMedia:
    """What the per-series work needs; no platform, so any process can build it."""

    engine: Engine
    store: ObjectStore
    results: ObjectStore
    dciodvfy_path: str


def process_arrived_series(media: SeriesMedia, series_instance_uid: str) -> list[int]:
    """References, thumbnail and validation of one series, then the thumbnails of the series
    that reference it (a SEG that came first gets its overlay now).

    Returns the pks of the series whose derived catalog fields changed: this one first, then
    those that reference it and those it references (before and now); empty if it is gone.
    """
    with write_transaction(media.engine) as session:
        series_pk = session.scalar(
            select(Series.id).where(Series.series_instance_uid == series_instance_uid)
        )
        if series_pk is None:
            return []
        before = set(stored_references(session, series_pk))
        linked = before | record_references(session, series_pk)
        dependants = [s.id for s in referencing_series(session, series_instance_uid)]
        referenced = list(
            session.scalars(select(Series.id).where(Series.series_instance_uid.in_(linked)))
        )
    for pk in (series_pk, *dependants):
        make_series_thumbnail(
            engine=media.engine, store=media.store, results=media.results, series_pk=pk
        )
    validate_series(
        engine=media.engine,
        store=media.store,
        series_pk=series_pk,
        dciodvfy_path=media.dciodvfy_path,
    )
    return list(dict.fromkeys((series_pk, *dependants, *referenced)))


class SeriesJobs:
    """A bounded background pool that processes arrived series."""

    def __init__(
        self,
        media: SeriesMedia,
        *,
        workers: int = DEFAULT_WORKERS,
        max_pending: int = DEFAULT_MAX_PENDING,
        on_processed: Callable[[Sequence[int]], object] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"'workers' must be >= 1, got {workers}")
        if max_pending < 1:
            raise ValueError(f"'max_pending' must be >= 1, got {max_pending}")
        self._media = media
        self._on_processed = on_processed
        self._max_pending = max_pending
        self._pending = 0
        self._idle = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kaapana-series")

    def on_series_arrived(self, event: SeriesArrived) -> None:
        """An ``EventBus`` handler: queue the series and return at once."""
        self.submit(event.series_instance_uid)

    def submit(self, series_instance_uid: str) -> bool:
        """Queue one series; False (logged) when the backlog is full or the pool closed."""
        with self._idle:
            if self._pending >= self._max_pending:
                log.warning(
                    "series jobs backlog full; series %s not processed now", series_instance_uid
                )
                return False
            self._pending += 1
        try:
            self._pool.submit(self._run, series_instance_uid)
        except RuntimeError:
            self._done()
            log.warning("series jobs closed; series %s not processed", series_instance_uid)
            return False
        return True

    def _run(self, series_instance_uid: str) -> None:
        try:
            changed = process_arrived_series(self._media, series_instance_uid)
            if changed and self._on_processed is not None:
                self._on_processed(changed)
        except Exception:  # the one boundary: a job's failure must not end the worker
            log.exception("processing arrived series %s failed", series_instance_uid)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued series is processed; False if ``timeout`` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Finish what is queued, then stop the workers."""
        self._pool.shutdown(wait=True)


__all__ = ["SeriesJobs", "SeriesMedia", "process_arrived_series"]
