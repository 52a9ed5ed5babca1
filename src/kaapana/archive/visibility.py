"""Who sees what: a project sees a series when ``series_projects`` links them.

Data is stored once; a patient or study is visible to a project when any of its series is. These
are correlated EXISTS clauses, so they ride on the primary key of ``series_projects`` and the
``study_pk``/``patient_pk`` indexes instead of joining (and multiplying) rows.

A caller's scope is the set of project pks it may read, or None for "everything" (the ``admin``
project and instance administrators); an empty set sees nothing.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased

from kaapana.archive.metadata import UID_PATTERN
from kaapana.db.models import Patient, Series, SeriesProject, Study
from kaapana.errors import InvalidInput

ProjectScope = frozenset[int] | None
MAX_LISTED_UIDS = 20  # how many offending UIDs an error names
_CHUNK = 500  # UIDs per IN (...) list, well below every engine's bound-parameter limit


def _in_scope(projects: frozenset[int]) -> ColumnElement[bool]:
    if len(projects) == 1:
        return SeriesProject.project_pk == next(iter(projects))
    return SeriesProject.project_pk.in_(sorted(projects))


def visible_series(series: Any, projects: frozenset[int]) -> ColumnElement[bool]:
    """``series`` (the mapped class or an alias) is visible to one of the projects."""
    return exists().where(SeriesProject.series_pk == series.id, _in_scope(projects))


def visible_study(projects: frozenset[int]) -> ColumnElement[bool]:
    member = aliased(Series)
    return exists(
        select(1)
        .select_from(member)
        .where(member.study_pk == Study.id, visible_series(member, projects))
    )


def visible_patient(projects: frozenset[int]) -> ColumnElement[bool]:
    member = aliased(Series)
    study = aliased(Study)
    return exists(
        select(1)
        .select_from(member)
        .join(study, member.study_pk == study.id)
        .where(study.patient_pk == Patient.id, visible_series(member, projects))
    )


def _listed(uids: Sequence[str]) -> str:
    shown = ", ".join(repr(uid[:80]) for uid in uids[:MAX_LISTED_UIDS])
    more = len(uids) - MAX_LISTED_UIDS
    return shown + (f" and {more} more" if more > 0 else "")


def visible_series_pks(
    session: Session, uids: Sequence[str], projects: ProjectScope, *, field: str = "series"
) -> list[int]:
    """The pks of the series with these SeriesInstanceUIDs, all visible to ``projects``.

    For requests that name series in bulk and must act on all or none: any UID that is not a
    UID, or that the scope does not see, raises ``InvalidInput`` naming (up to 20 of) them, so
    the caller changes nothing. Duplicates are fine; the answer is in first-seen order.
    """
    wanted = list(dict.fromkeys(uid.strip() for uid in uids))
    if not wanted:
        raise InvalidInput(f"'{field}' must name at least one SeriesInstanceUID")
    malformed = [uid for uid in wanted if len(uid) > 64 or not UID_PATTERN.match(uid)]
    if malformed:
        raise InvalidInput(f"'{field}' holds {len(malformed)} invalid UIDs: {_listed(malformed)}")
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        statement = select(Series.series_instance_uid, Series.id).where(
            Series.series_instance_uid.in_(wanted[start : start + _CHUNK])
        )
        if projects is not None:
            statement = statement.where(visible_series(Series, projects))
        found.update((uid, pk) for uid, pk in session.execute(statement))
    missing = [uid for uid in wanted if uid not in found]
    if missing:
        raise InvalidInput(
            f"'{field}': {len(missing)} series not found in the project: {_listed(missing)}"
        )
    return [found[uid] for uid in wanted]


__all__ = [
    "MAX_LISTED_UIDS",
    "ProjectScope",
    "visible_patient",
    "visible_series",
    "visible_series_pks",
    "visible_study",
]
