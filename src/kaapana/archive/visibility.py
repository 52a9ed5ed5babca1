"""Who sees what: a project sees a series when ``series_projects`` links them.

Data is stored once; a patient or study is visible to a project when any of its series is. These
are correlated EXISTS clauses, so they ride on the primary key of ``series_projects`` and the
``study_pk``/``patient_pk`` indexes instead of joining (and multiplying) rows.
"""

from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import aliased

from kaapana.db.models import Patient, Series, SeriesProject, Study


def visible_series(series: Any, project_pk: int) -> ColumnElement[bool]:
    """``series`` (the mapped class or an alias) is visible to the project."""
    return exists().where(
        SeriesProject.series_pk == series.id, SeriesProject.project_pk == project_pk
    )


def visible_study(project_pk: int) -> ColumnElement[bool]:
    member = aliased(Series)
    return exists(
        select(1)
        .select_from(member)
        .where(member.study_pk == Study.id, visible_series(member, project_pk))
    )


def visible_patient(project_pk: int) -> ColumnElement[bool]:
    member = aliased(Series)
    study = aliased(Study)
    return exists(
        select(1)
        .select_from(member)
        .join(study, member.study_pk == study.id)
        .where(study.patient_pk == Patient.id, visible_series(member, project_pk))
    )


__all__ = ["visible_patient", "visible_series", "visible_study"]
