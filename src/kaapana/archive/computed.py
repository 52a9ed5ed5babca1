"""The computed attributes of PS3.4 C.6 (counts, modalities, SOP classes) for a page of results.

One grouped query per kind over the whole page (IN lists in chunks), never one per result, so a
C-FIND answering many studies costs the same few round trips as one answering a single study.
Only series visible to the caller count.
"""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope, visible_series
from kaapana.db.models import Instance, Series, Study

CHUNK: Final = 500  # keeps every IN list far below any engine's parameter limit
PATIENT_COUNTS: Final = (
    "NumberOfPatientRelatedStudies",
    "NumberOfPatientRelatedSeries",
    "NumberOfPatientRelatedInstances",
)
STUDY_SUMMARY: Final = (
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "ModalitiesInStudy",
)
ComputedValues = dict[str, dict[int, Any]]


def chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _visible(projects: ProjectScope) -> list[ColumnElement[bool]]:
    return [] if projects is None else [visible_series(Series, projects)]


def _rows(session: Session, statement: Select[Any], key: Any, pks: Sequence[int]) -> list[Any]:
    rows: list[Any] = []
    for chunk in chunks(pks):
        rows.extend(session.execute(statement.where(key.in_(chunk))).all())
    return rows


def _patient_counts(
    session: Session, patient_pks: Sequence[int], projects: ProjectScope
) -> ComputedValues:
    statement = (
        select(
            Study.patient_pk,
            func.count(func.distinct(Series.study_pk)),
            func.count(Series.id),
            func.sum(Series.number_of_instances),
        )
        .join(Study, Series.study_pk == Study.id)
        .where(*_visible(projects))
        .group_by(Study.patient_pk)
    )
    values: ComputedValues = {keyword: dict.fromkeys(patient_pks, 0) for keyword in PATIENT_COUNTS}
    for patient_pk, studies, series, instances in _rows(
        session, statement, Study.patient_pk, patient_pks
    ):
        for keyword, count in zip(PATIENT_COUNTS, (studies, series, instances), strict=True):
            values[keyword][patient_pk] = int(count or 0)
    return values


def _study_summary(
    session: Session, study_pks: Sequence[int], projects: ProjectScope
) -> ComputedValues:
    statement = (
        select(
            Series.study_pk,
            Series.modality,
            func.count(Series.id),
            func.sum(Series.number_of_instances),
        )
        .where(*_visible(projects))
        .group_by(Series.study_pk, Series.modality)
    )
    series: dict[int, int] = dict.fromkeys(study_pks, 0)
    instances: dict[int, int] = dict.fromkeys(study_pks, 0)
    modalities: dict[int, set[str]] = defaultdict(set)
    for study_pk, modality, series_count, instance_count in _rows(
        session, statement, Series.study_pk, study_pks
    ):
        series[study_pk] += int(series_count)
        instances[study_pk] += int(instance_count or 0)
        if modality:
            modalities[study_pk].add(modality)
    return {
        "NumberOfStudyRelatedSeries": series,
        "NumberOfStudyRelatedInstances": instances,
        "ModalitiesInStudy": {pk: sorted(modalities[pk]) for pk in study_pks},
    }


def _sop_classes(
    session: Session, study_pks: Sequence[int], projects: ProjectScope
) -> dict[int, Any]:
    statement = (
        select(Series.study_pk, Instance.sop_class_uid)
        .join(Series, Instance.series_pk == Series.id)
        .where(*_visible(projects))
        .distinct()
    )
    classes: dict[int, set[str]] = defaultdict(set)
    for study_pk, sop_class_uid in _rows(session, statement, Series.study_pk, study_pks):
        classes[study_pk].add(sop_class_uid)
    return {pk: sorted(classes[pk]) for pk in study_pks}


def computed_values(
    session: Session,
    *,
    keywords: set[str],
    patient_pks: Sequence[int],
    study_pks: Sequence[int],
    projects: ProjectScope,
) -> ComputedValues:
    """keyword -> (patient or study pk -> value) for the requested computed attributes."""
    values: ComputedValues = {}
    if keywords.intersection(PATIENT_COUNTS):
        values.update(_patient_counts(session, patient_pks, projects))
    if keywords.intersection(STUDY_SUMMARY):
        values.update(_study_summary(session, study_pks, projects))
    if "SOPClassesInStudy" in keywords:
        values["SOPClassesInStudy"] = _sop_classes(session, study_pks, projects)
    return values


__all__ = [
    "CHUNK",
    "PATIENT_COUNTS",
    "STUDY_SUMMARY",
    "ComputedValues",
    "chunks",
    "computed_values",
]
