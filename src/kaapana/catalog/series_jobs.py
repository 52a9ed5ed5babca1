"""The per-series work after ``SeriesArrived``: references, thumbnail, validation.

:func:`process_arrived_series` is the work itself, free of threading and of the platform, so
the catalog's service workflow (``catalog/series_workflow.py``) runs it on a workflow worker; it
answers which series' catalog rows its results change, so this module needs no catalog.
"""

from dataclasses import dataclass

from sqlalchemy import Engine, select

from kaapana.catalog.references import record_references, referencing_series, stored_references
from kaapana.catalog.thumbnails import make_series_thumbnail
from kaapana.catalog.validation import validate_series
from kaapana.config import Settings
from kaapana.db.engine import create_engine_for, write_transaction
from kaapana.db.models import Series
from kaapana.storage import FilesystemStore, ObjectStore


@dataclass(frozen=True, slots=True)
class SeriesMedia:
    """What the per-series work needs; no platform, so any process can build it."""

    engine: Engine
    store: ObjectStore
    results: ObjectStore
    dciodvfy_path: str

    @classmethod
    def of(cls, settings: Settings, engine: Engine | None = None) -> "SeriesMedia":
        """The installation's index and storage (a new database engine unless given one)."""
        return cls(
            engine=engine or create_engine_for(settings.resolved_database_url),
            store=FilesystemStore(settings.resolved_storage_dir),
            results=FilesystemStore(settings.resolved_results_dir),
            dciodvfy_path=settings.dciodvfy_path,
        )


def process_arrived_series(media: SeriesMedia, series_instance_uid: str) -> list[int]:
    """References, thumbnail and validation of one series, then the thumbnails of the series
    that reference it (a SEG that came first gets its overlay now).

    Returns the pks of the series whose derived catalog fields changed: this one first, then
    those that reference it and those it references (before and now); empty if it is gone.
    """
    with write_transaction(media.engine) as session:
        series_pk = session.scalar(
            select(Series.id).where(Series.series_instance_uid == series_instance_uid)
        )
        if series_pk is None:
            return []
        before = set(stored_references(session, series_pk))
        linked = before | record_references(session, series_pk)
        dependants = [s.id for s in referencing_series(session, series_instance_uid)]
        referenced = list(
            session.scalars(select(Series.id).where(Series.series_instance_uid.in_(linked)))
        )
    for pk in (series_pk, *dependants):
        make_series_thumbnail(
            engine=media.engine, store=media.store, results=media.results, series_pk=pk
        )
    validate_series(
        engine=media.engine,
        store=media.store,
        series_pk=series_pk,
        dciodvfy_path=media.dciodvfy_path,
    )
    return list(dict.fromkeys((series_pk, *dependants, *referenced)))


__all__ = ["SeriesMedia", "process_arrived_series"]
