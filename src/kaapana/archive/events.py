"""Notifications about arrived data.

A series is *stable* once it has been quiet for ``series_quiet_seconds``. The state lives in the
index (``series.last_received_at``/``stable_at``), not in memory, so every receiver process feeds
one monitor, and a series that went quiet while the server was down is announced after restart.
The transaction that marks a series stable also marks it ``announcing`` until every handler has
run: a series whose announcement a crash cut short is announced again, as ``replayed``.
"""

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from kaapana.db.engine import write_transaction
from kaapana.db.models import Series, Study, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeriesArrived:
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    number_of_instances: int
    replayed: bool = False
    """Announced again after an announcement that did not finish: a handler that must not act
    twice (start a run, say) looks for what it did the first time."""


Handler = Callable[[Any], None]


class EventBus:
    """Many handlers per event type; a failing handler is logged and never stops the others."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type, handler: Handler) -> None:
        self._handlers[event_type].append(handler)

    def publish(self, event: object) -> None:
        for handler in self._handlers[type(event)]:
            try:
                handler(event)
            except Exception:
                log.exception("handler %r failed on %r", handler, event)


class SeriesQuietMonitor:
    """Marks quiet series stable and publishes ``SeriesArrived`` for each, once."""

    def __init__(self, engine: Engine, bus: EventBus, *, quiet_seconds: float) -> None:
        self._engine = engine
        self._bus = bus
        self._quiet = timedelta(seconds=quiet_seconds)
        self._interval = min(1.0, quiet_seconds / 4)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> list[SeriesArrived]:
        """Announce every series quiet for long enough, and every one whose announcement was
        cut short; returns what was announced."""
        cutoff = utcnow() - self._quiet
        with write_transaction(self._engine) as session:
            quiet = session.scalars(
                select(Series.id)
                .where(Series.stable_at.is_(None), Series.last_received_at <= cutoff)
                .limit(1000)
            ).all()
            if quiet:
                session.execute(
                    update(Series)
                    .where(Series.id.in_(quiet), Series.stable_at.is_(None))
                    .values(stable_at=utcnow(), announcing=True)
                )
            rows = session.execute(
                select(
                    Series.id,
                    Study.study_instance_uid,
                    Series.series_instance_uid,
                    Series.modality,
                    Series.number_of_instances,
                )
                .join(Study, Series.study_pk == Study.id)
                .where(Series.announcing.is_(True), Series.stable_at.is_not(None))
                .order_by(Series.id)
                .limit(1000)
            ).all()
        fresh = set(quiet)
        events = [SeriesArrived(*row[1:], replayed=row.id not in fresh) for row in rows]
        for event in events:
            log.info(
                "series %s is complete (%d instances)%s",
                event.series_instance_uid,
                event.number_of_instances,
                "; announced again" if event.replayed else "",
            )
            self._bus.publish(event)
        if rows:
            with write_transaction(self._engine) as session:
                session.execute(
                    update(Series)
                    .where(Series.id.in_([row.id for row in rows]))
                    .values(announcing=False)
                )
        return events

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="kaapana-series-monitor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:
                log.exception("series monitor poll failed; trying again")


__all__ = ["EventBus", "SeriesArrived", "SeriesQuietMonitor"]
