"""Removing studies and series from projects, and from the archive once no project holds them.

Data is stored once and made visible to projects, so deleting "from a project" unlinks; only a
series that no project holds any more loses its rows and files. Rows go in one transaction;
files are deleted after it commits, so a failure never leaves a row pointing at a missing file.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, exists, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope
from kaapana.db.engine import write_transaction
from kaapana.db.models import (
    Dataset,
    DatasetSeries,
    Instance,
    Patient,
    Series,
    SeriesProject,
    Study,
)
from kaapana.errors import NotFound
from kaapana.storage import ObjectStore


@dataclass(frozen=True, slots=True)
class Removal:
    series_unlinked: int
    series_deleted: int
    instances_deleted: int


def remove(
    engine: Engine,
    store: ObjectStore,
    *,
    study: str,
    series: str | None = None,
    projects: ProjectScope,
) -> Removal:
    """Unlink the study (or one series) from ``projects`` (None: from all, i.e. delete it)."""
    with write_transaction(engine) as session:
        statement = (
            select(Series.id)
            .join(Study, Series.study_pk == Study.id)
            .where(Study.study_instance_uid == study)
        )
        if series is not None:
            statement = statement.where(Series.series_instance_uid == series)
        links = select(SeriesProject.series_pk).where(
            SeriesProject.series_pk.in_(statement.scalar_subquery())
        )
        if projects is not None:
            links = links.where(SeriesProject.project_pk.in_(sorted(projects)))
        series_pks = sorted(set(session.scalars(links)))
        if not series_pks:
            what = f"series {series}" if series else f"study {study}"
            raise NotFound(f"{what} not found")
        unlink = delete(SeriesProject).where(SeriesProject.series_pk.in_(series_pks))
        if projects is not None:
            unlink = unlink.where(SeriesProject.project_pk.in_(sorted(projects)))
        session.execute(unlink)
        if projects is not None:  # the projects' datasets lose the series too
            datasets = select(Dataset.id).where(Dataset.project_pk.in_(sorted(projects)))
            session.execute(
                delete(DatasetSeries).where(
                    DatasetSeries.series_pk.in_(series_pks),
                    DatasetSeries.dataset_pk.in_(datasets.scalar_subquery()),
                )
            )
        orphans = list(
            session.scalars(
                select(Series.id).where(
                    Series.id.in_(series_pks),
                    ~exists().where(SeriesProject.series_pk == Series.id),
                )
            )
        )
        keys = list(
            session.scalars(select(Instance.storage_key).where(Instance.series_pk.in_(orphans)))
        )
        if orphans:
            session.execute(delete(Instance).where(Instance.series_pk.in_(orphans)))
            session.execute(delete(Series).where(Series.id.in_(orphans)))
            _drop_empty_parents(session)
    _delete_files(store, keys)
    return Removal(len(series_pks), len(orphans), len(keys))


def _drop_empty_parents(session: Session) -> None:
    empty_studies = select(Study.id).where(~exists().where(Series.study_pk == Study.id))
    session.execute(delete(Study).where(Study.id.in_(empty_studies.scalar_subquery())))
    empty_patients = select(Patient.id).where(~exists().where(Study.patient_pk == Patient.id))
    session.execute(delete(Patient).where(Patient.id.in_(empty_patients.scalar_subquery())))


def _delete_files(store: ObjectStore, keys: Iterable[str]) -> None:
    for key in keys:
        store.delete(key)


__all__ = ["Removal", "remove"]
