"""How much a scope holds: patients, studies, series, instances and stored bytes, from the index."""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, func, select

from kaapana.archive.visibility import ProjectScope, visible_patient, visible_series, visible_study
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Patient, Series, Study


@dataclass(frozen=True, slots=True)
class ArchiveCounts:
    patients: int
    studies: int
    series: int
    instances: int
    stored_bytes: int


def count_archive(engine: Engine, *, projects: ProjectScope) -> ArchiveCounts:
    """Counts of what ``projects`` sees (None: the whole archive); instances via their series."""
    patient_scope: list[ColumnElement[bool]] = []
    study_scope: list[ColumnElement[bool]] = []
    series_scope: list[ColumnElement[bool]] = []
    if projects is not None:
        patient_scope = [visible_patient(projects)]
        study_scope = [visible_study(projects)]
        series_scope = [visible_series(Series, projects)]
    with session_factory(engine)() as session:
        patients = session.scalar(select(func.count()).select_from(Patient).where(*patient_scope))
        studies = session.scalar(select(func.count()).select_from(Study).where(*study_scope))
        series, instances = session.execute(
            select(func.count(), func.coalesce(func.sum(Series.number_of_instances), 0)).where(
                *series_scope
            )
        ).one()
        stored = session.scalar(
            select(func.coalesce(func.sum(Instance.size), 0))
            .join(Series, Instance.series_pk == Series.id)
            .where(*series_scope)
        )
    return ArchiveCounts(
        patients=patients or 0,
        studies=studies or 0,
        series=int(series),
        instances=int(instances),
        stored_bytes=int(stored or 0),
    )


__all__ = ["ArchiveCounts", "count_archive"]
