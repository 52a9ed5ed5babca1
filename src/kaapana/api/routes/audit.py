"""The audit trail, for administrators."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from kaapana.api.deps import AdminPrincipal, PlatformDep
from kaapana.auth.audit import AuditRecord

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", operation_id="list_audit_events")
def list_audit_events(
    platform: PlatformDep,
    _admin: AdminPrincipal,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    project: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> list[AuditRecord]:
    """Newest first; for the next page pass the smallest ``id`` seen as ``before_id``."""
    return platform.auth.audit.query(
        actor=actor,
        action=action,
        project=project,
        since=_naive_utc(since),
        until=_naive_utc(until),
        limit=limit,
        before_id=before_id,
    )


def _naive_utc(value: datetime | None) -> datetime | None:
    """The index stores naive UTC; an aware query bound is converted, a naive one taken as UTC."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
