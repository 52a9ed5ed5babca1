"""Resolving stored objects by study, series and SOP Instance UID, within a caller's scope.

What WADO-RS and deletion need: the visible instances under a path, in series and instance
order, with what answering them takes (storage key, transfer syntax, frames) and, on request,
their precomputed DICOM JSON. Nothing visible answers ``NotFound``, whether it exists or not.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Text, cast, select

from kaapana.archive.visibility import ProjectScope, visible_series
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, Study
from kaapana.errors import NotFound


@dataclass(frozen=True, slots=True)
class StoredObject:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    storage_key: str
    size: int
    number_of_frames: int
    metadata: str | None = None  # the stored DICOM JSON, as JSON text

    @property
    def path(self) -> str:
        """The DICOMweb path of the instance below the root."""
        return (
            f"studies/{self.study_instance_uid}/series/{self.series_instance_uid}"
            f"/instances/{self.sop_instance_uid}"
        )


def describe_target(study: str, series: str | None = None, sop: str | None = None) -> str:
    if sop is not None:
        return f"instance {sop}"
    if series is not None:
        return f"series {series}"
    return f"study {study}"


def stored_instances(
    engine: Engine,
    *,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    projects: ProjectScope,
    with_metadata: bool = False,
) -> list[StoredObject]:
    """The visible instances of a study, series or single instance; ``NotFound`` if none."""
    columns: list[Any] = [
        Study.study_instance_uid,
        Series.series_instance_uid,
        Instance.sop_instance_uid,
        Instance.sop_class_uid,
        Instance.transfer_syntax_uid,
        Instance.storage_key,
        Instance.size,
        Instance.number_of_frames,
    ]
    if with_metadata:  # as text: answers embed it verbatim, decoding it would cost the most
        columns.append(cast(Instance.metadata_json, Text))
    statement = (
        select(*columns)
        .join(Series, Instance.series_pk == Series.id)
        .join(Study, Series.study_pk == Study.id)
        .where(Study.study_instance_uid == study)
        .order_by(Series.series_number.nulls_last(), Series.id)
        .order_by(Instance.instance_number.nulls_last(), Instance.id)
    )
    if series is not None:
        statement = statement.where(Series.series_instance_uid == series)
    if sop is not None:
        statement = statement.where(Instance.sop_instance_uid == sop)
    if projects is not None:
        statement = statement.where(visible_series(Series, projects))
    with session_factory(engine)() as session:
        rows = session.execute(statement).all()
    if not rows:
        raise NotFound(f"{describe_target(study, series, sop)} not found")
    return [StoredObject(*row) for row in rows]


__all__ = ["StoredObject", "describe_target", "stored_instances"]
