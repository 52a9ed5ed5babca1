"""Who sees what: a project sees a series when ``series_projects`` links them.

Data is stored once; a patient or study is visible to a project when any of its series is. These
are correlated EXISTS clauses, so they ride on the primary key of ``series_projects`` and the
``study_pk``/``patient_pk`` indexes instead of joining (and multiplying) rows.

A caller's scope is the set of project pks it may read, or None for "everything" (the ``admin``
project and instance administrators); an empty set sees nothing.
"""

from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import aliased

from kaapana.db.models import Patient, Series, SeriesProject, Study

ProjectScope = frozenset[int] | None


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


__all__ = ["ProjectScope", "visible_patient", "visible_series", "visible_study"]
