"""Deleting series from a project in bulk: the curation side of the archive's one removal path.

A project's principal investigator cleans a cohort (wrong patient, failed acquisitions): the
series leave the project and its datasets, and leave the archive (rows and files) once no other
project holds them. The work is ``archive.deletion.remove_series``, the same path DICOMweb
DELETE takes; this adds what every interface needs around it: waiting for objects still being
indexed, and the audit record. Who may delete is checked by the interface (``manage``).
"""

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from kaapana.archive.deletion import Removal, SeriesResults, remove_series
from kaapana.auth.audit import Audit
from kaapana.db.models import Project
from kaapana.storage import ObjectStore


class SeriesDeletion:
    def __init__(
        self,
        *,
        engine: Engine,
        store: ObjectStore,
        results: SeriesResults,
        intents: Path,
        audit: Audit,
        flush: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._store = store
        self._results = results
        self._intents = intents
        self._audit = audit
        self._flush = flush

    def delete(
        self,
        project: Project,
        series_instance_uids: Sequence[str],
        *,
        actor: str,
        address: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Removal:
        """Remove the series from ``project``, all or none (unknown UIDs change nothing);
        ``detail`` adds to the audit record (e.g. the run that asked)."""
        self._flush()  # rows still in flight must not outlive their deletion
        removal = remove_series(
            self._engine,
            self._store,
            series=series_instance_uids,
            projects=frozenset({project.id}),
            intents=self._intents,
            results=self._results,
        )
        self._audit.record(
            "series.delete",
            actor=actor,
            target=f"project:{project.name}",
            project=project.name,
            address=address,
            detail={
                **(detail or {}),
                "series": list(dict.fromkeys(series_instance_uids))[:100],
                "series_unlinked": removal.series_unlinked,
                "series_deleted": removal.series_deleted,
                "instances_deleted": removal.instances_deleted,
            },
        )
        return removal


__all__ = ["SeriesDeletion"]
