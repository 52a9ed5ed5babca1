"""Removing studies and series from projects, and from the archive once no project holds them.

Data is stored once and made visible to projects, so deleting "from a project" unlinks; only a
series that no project holds any more loses its rows and files. Rows go in one transaction;
files are deleted after it commits, so a failure never leaves a row pointing at a missing file.
The keys to delete are written (and fsynced) to an intent file before the commit, so a crash
between commit and file deletion is finished on the next start (``finish_removals``) instead of
leaving files that ``kaapana check`` would index again: deleted data stays deleted. Files made
from a series elsewhere (``SeriesResults``: its thumbnail in result storage) go the same way: the
UIDs of the deleted series are in a second intent, and a file of a series that still exists is
never deleted.
"""

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, exists, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope, visible_series_pks
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
SERIES_INTENT_SUFFIX = ".series-removal"  # SeriesInstanceUIDs whose result files to delete
_CHUNK = 500  # series per statement in bulk removals


@dataclass(frozen=True, slots=True)
class SeriesResults:
    """The files derived from a series in another store; ``keys`` names them from its UID.

    The archive knows no thumbnail: whoever makes the files says where they are.
    """

    store: ObjectStore
    keys: Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class _Doomed:
    """What to delete once the transaction has committed, with the intents that name it."""

    keys: list[str]
    intent: Path | None
    series_uids: list[str]
    series_intent: Path | None


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
    results: SeriesResults,
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
        removal, doomed = _unlink(session, series_pks, projects=projects, intents=intents)
    _delete_files(store, results, doomed)
    return removal


def remove_series(
    engine: Engine,
    store: ObjectStore,
    *,
    series: Sequence[str],
    projects: ProjectScope,
    intents: Path,
    results: SeriesResults,
) -> Removal:
    """Unlink many series (SeriesInstanceUIDs) from ``projects`` at once, all or none.

    A UID the projects do not hold raises ``InvalidInput`` naming it, before anything changes.
    One transaction; the rows go in chunks so no statement exceeds an engine's parameter limit.
    """
    done: list[tuple[Removal, _Doomed]] = []
    with write_transaction(engine) as session:
        series_pks = sorted(set(visible_series_pks(session, series, projects)))
        for start in range(0, len(series_pks), _CHUNK):
            chunk = series_pks[start : start + _CHUNK]
            done.append(_unlink(session, chunk, projects=projects, intents=intents))
    for _removal, doomed in done:
        _delete_files(store, results, doomed)
    return Removal(
        sum(r.series_unlinked for r, _ in done),
        sum(r.series_deleted for r, _ in done),
        sum(r.instances_deleted for r, _ in done),
    )


def _unlink(
    session: Session, series_pks: list[int], *, projects: ProjectScope, intents: Path
) -> tuple[Removal, _Doomed]:
    """In the caller's transaction: unlink, then drop the rows of series no project holds.

    Returns the storage keys and series to delete the files of once the transaction has
    committed, and their intents.
    """
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
    orphaned = session.execute(
        select(Series.id, Series.series_instance_uid).where(
            Series.id.in_(series_pks),
            ~exists().where(SeriesProject.series_pk == Series.id),
        )
    ).all()
    orphans = [row.id for row in orphaned]
    series_uids = [row.series_instance_uid for row in orphaned]
    keys = list(
        session.scalars(select(Instance.storage_key).where(Instance.series_pk.in_(orphans)))
    )
    doomed = _Doomed(
        keys,
        _write_intent(intents, keys, INTENT_SUFFIX) if keys else None,
        series_uids,
        _write_intent(intents, series_uids, SERIES_INTENT_SUFFIX) if series_uids else None,
    )
    if orphans:
        study_pks = set(session.scalars(select(Series.study_pk).where(Series.id.in_(orphans))))
        session.execute(delete(Instance).where(Instance.series_pk.in_(orphans)))
        session.execute(delete(Series).where(Series.id.in_(orphans)))
        _drop_empty_parents(session, study_pks)
    return Removal(len(series_pks), len(orphans), len(keys)), doomed


def _delete_files(store: ObjectStore, results: SeriesResults, doomed: _Doomed) -> None:
    for key in doomed.keys:
        store.delete(key)
    if doomed.intent is not None:
        doomed.intent.unlink()
    _delete_results(results, doomed.series_uids)
    if doomed.series_intent is not None:
        doomed.series_intent.unlink()


def _delete_results(results: SeriesResults, series_uids: Sequence[str]) -> None:
    for uid in series_uids:
        for key in results.keys(uid):
            results.store.delete(key)


def _write_intent(intents: Path, keys: list[str], suffix: str) -> Path:
    intents.mkdir(parents=True, exist_ok=True)
    path = intents / f"{uuid.uuid4().hex}{suffix}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, "\n".join(keys).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def finish_removals(
    engine: Engine, store: ObjectStore, intents: Path, results: SeriesResults
) -> int:
    """Delete the files of removals that committed before a crash; returns how many (of the
    archive's store; result files are deleted too, without being counted)."""
    _finish_series_results(engine, results, intents)
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


def _finish_series_results(engine: Engine, results: SeriesResults, intents: Path) -> None:
    for path in sorted(intents.glob(f"*{SERIES_INTENT_SUFFIX}")) if intents.is_dir() else []:
        uids = [uid for uid in path.read_text().splitlines() if uid]
        with session_factory(engine)() as session:
            present = set(
                session.scalars(
                    select(Series.series_instance_uid).where(Series.series_instance_uid.in_(uids))
                )
            )
        _delete_results(results, [uid for uid in uids if uid not in present])
        path.unlink()


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


__all__ = [
    "INTENT_SUFFIX",
    "SERIES_INTENT_SUFFIX",
    "Removal",
    "SeriesResults",
    "finish_removals",
    "remove",
    "remove_series",
]
