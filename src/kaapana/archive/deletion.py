"""Removing studies and series from projects, and from the archive once no project holds them.

Data is stored once and made visible to projects, so deleting "from a project" unlinks; only a
series that no project holds any more loses its rows and files. Rows go in one transaction;
files are deleted after it commits, so a failure never leaves a row pointing at a missing file.
The keys to delete are written (and fsynced) to an intent file before the commit, so a crash
between commit and file deletion is finished on the next start (``finish_removals``) instead of
leaving files that ``kaapana check`` would index again: deleted data stays deleted.
"""

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, exists, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope
from kaapana.db.engine import session_factory, write_transaction
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

log = logging.getLogger(__name__)
INTENT_SUFFIX = ".removal"


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
    intents: Path,
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
        intent = _write_intent(intents, keys) if keys else None
        if orphans:
            study_pks = set(session.scalars(select(Series.study_pk).where(Series.id.in_(orphans))))
            session.execute(delete(Instance).where(Instance.series_pk.in_(orphans)))
            session.execute(delete(Series).where(Series.id.in_(orphans)))
            _drop_empty_parents(session, study_pks)
    for key in keys:
        store.delete(key)
    if intent is not None:
        intent.unlink()
    return Removal(len(series_pks), len(orphans), len(keys))


def _write_intent(intents: Path, keys: list[str]) -> Path:
    intents.mkdir(parents=True, exist_ok=True)
    path = intents / f"{uuid.uuid4().hex}{INTENT_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, "\n".join(keys).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def finish_removals(engine: Engine, store: ObjectStore, intents: Path) -> int:
    """Delete the files of removals that committed before a crash; returns how many."""
    deleted = 0
    for path in sorted(intents.glob(f"*{INTENT_SUFFIX}")) if intents.is_dir() else []:
        keys = [key for key in path.read_text().splitlines() if key]
        with session_factory(engine)() as session:
            indexed = set(
                session.scalars(select(Instance.storage_key).where(Instance.storage_key.in_(keys)))
            )
        for key in keys:
            if key not in indexed:  # the removal committed; a rolled-back one keeps its files
                store.delete(key)
                deleted += 1
        path.unlink()
    if deleted:
        log.warning("finished an interrupted removal: %d files deleted", deleted)
    return deleted


def _drop_empty_parents(session: Session, study_pks: set[int]) -> None:
    """The studies of the deleted series, and their patients, once nothing is left in them."""
    patient_pks = set(session.scalars(select(Study.patient_pk).where(Study.id.in_(study_pks))))
    session.execute(
        delete(Study).where(Study.id.in_(study_pks), ~exists().where(Series.study_pk == Study.id))
    )
    session.execute(
        delete(Patient).where(
            Patient.id.in_(patient_pks), ~exists().where(Study.patient_pk == Patient.id)
        )
    )


__all__ = ["INTENT_SUFFIX", "Removal", "finish_removals", "remove"]
