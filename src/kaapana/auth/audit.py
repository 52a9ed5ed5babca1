"""The audit trail: who did what to which data, when, from where, and whether it worked.

Every service writes through ``Audit.record``; admins read it through ``Audit.query``. Events are
written in their own short transaction so an audited action that later fails is still recorded.
Frequent reads (a viewer fetching frame after frame) are recorded once per actor, action and
target per ``repeat_window`` seconds, which keeps the trail readable and the index writer free.
"""

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import AuditEvent


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    time: datetime
    actor: str
    action: str
    outcome: str
    target: str
    project: str | None
    address: str | None
    detail: dict[str, Any]


class Audit:
    def __init__(self, engine: Engine, *, repeat_window: float = 60.0) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._repeat_window = repeat_window
        self._recent: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def record(
        self,
        action: str,
        *,
        actor: str,
        target: str = "",
        project: str | None = None,
        outcome: str = "success",
        address: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        event = AuditEvent(
            actor=actor[:255],
            action=action,
            outcome=outcome,
            target=target[:1024],
            project=project,
            address=address,
            detail=dict(detail or {}),
        )
        with write_transaction(self._engine) as session:
            session.add(event)

    def record_access(self, action: str, *, actor: str, target: str, **kwargs: Any) -> bool:
        """Record a read, unless the same actor read the same target within the window."""
        key = (actor, action, target)
        now = time.monotonic()
        with self._lock:
            if now - self._recent.get(key, -self._repeat_window) < self._repeat_window:
                return False
            self._recent[key] = now
            if len(self._recent) > 10_000:
                cutoff = now - self._repeat_window
                self._recent = {k: t for k, t in self._recent.items() if t >= cutoff}
        self.record(action, actor=actor, target=target, **kwargs)
        return True

    def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        project: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
        statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if actor is not None:
            statement = statement.where(AuditEvent.actor == actor)
        if action is not None:
            statement = statement.where(AuditEvent.action == action)
        if project is not None:
            statement = statement.where(AuditEvent.project == project)
        if since is not None:
            statement = statement.where(AuditEvent.time >= since)
        if until is not None:
            statement = statement.where(AuditEvent.time < until)
        if before_id is not None:
            statement = statement.where(AuditEvent.id < before_id)
        with self._sessions() as session:
            return [
                AuditRecord(
                    id=e.id,
                    time=e.time,
                    actor=e.actor,
                    action=e.action,
                    outcome=e.outcome,
                    target=e.target,
                    project=e.project,
                    address=e.address,
                    detail=e.detail,
                )
                for e in session.scalars(statement)
            ]


__all__ = ["Audit", "AuditRecord"]
