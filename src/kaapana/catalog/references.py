"""Which image series a SEG, RTSTRUCT or SR series points at, and the reverse link.

The references come from the stored DICOM JSON of the series' instances; they are kept by UID in
``series_references`` because the referenced series may not have arrived yet, and the index on
the UID answers "which SEGs reference this series" in one query.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope, visible_series
from kaapana.catalog.dicom_json import DicomJson, json_items, json_values
from kaapana.catalog.lookup import visible_series_row
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, SeriesReference


def _series_uids(items: Iterable[DicomJson]) -> set[str]:
    return {str(uid) for item in items for uid in json_values(item, "SeriesInstanceUID") if uid}


def referenced_series_uids(metadata: DicomJson) -> set[str]:
    """The series one instance references (its own DICOM JSON).

    SEG: ReferencedSeriesSequence (also below StudiesContainingOtherReferencedInstancesSequence);
    RTSTRUCT: ReferencedFrameOfReferenceSequence > RTReferencedStudySequence >
    RTReferencedSeriesSequence; SR: CurrentRequestedProcedureEvidenceSequence and
    PertinentOtherEvidenceSequence > ReferencedSeriesSequence.
    """
    found = _series_uids(json_items(metadata, "ReferencedSeriesSequence"))
    for keyword in (
        "StudiesContainingOtherReferencedInstancesSequence",
        "CurrentRequestedProcedureEvidenceSequence",
        "PertinentOtherEvidenceSequence",
    ):
        for study in json_items(metadata, keyword):
            found |= _series_uids(json_items(study, "ReferencedSeriesSequence"))
    for frame_of_reference in json_items(metadata, "ReferencedFrameOfReferenceSequence"):
        for study in json_items(frame_of_reference, "RTReferencedStudySequence"):
            found |= _series_uids(json_items(study, "RTReferencedSeriesSequence"))
    own = json_values(metadata, "SeriesInstanceUID")
    return found - {str(uid) for uid in own}


def record_references(session: Session, series_pk: int) -> set[str]:
    """Replace the stored references of the series with those its instances hold now."""
    found: set[str] = set()
    for metadata in session.scalars(
        select(Instance.metadata_json).where(Instance.series_pk == series_pk)
    ):
        found |= referenced_series_uids(metadata or {})
    session.execute(delete(SeriesReference).where(SeriesReference.series_pk == series_pk))
    session.add_all(
        SeriesReference(series_pk=series_pk, referenced_series_uid=uid) for uid in sorted(found)
    )
    session.flush()
    return found


def stored_references(session: Session, series_pk: int) -> list[str]:
    """The referenced series UIDs recorded for the series, sorted."""
    return list(
        session.scalars(
            select(SeriesReference.referenced_series_uid)
            .where(SeriesReference.series_pk == series_pk)
            .order_by(SeriesReference.referenced_series_uid)
        )
    )


def referencing_series(
    session: Session, series_uid: str, *, projects: ProjectScope = None
) -> list[Series]:
    """The series (SEG, RTSTRUCT, SR) that reference ``series_uid``, within ``projects``."""
    statement = (
        select(Series)
        .join(SeriesReference, SeriesReference.series_pk == Series.id)
        .where(SeriesReference.referenced_series_uid == series_uid)
        .order_by(Series.id)
    )
    if projects is not None:
        statement = statement.where(visible_series(Series, projects))
    return list(session.scalars(statement))


@dataclass(frozen=True, slots=True)
class SeriesReferences:
    """Both directions of the links of one series."""

    series_instance_uid: str
    references: list[str]  # the series it references, arrived or not
    referenced_by: list[str]  # the visible series that reference it


def series_references(
    *, engine: Engine, series_instance_uid: str, projects: ProjectScope
) -> SeriesReferences:
    """The links of a series the caller sees; ``NotFound`` otherwise."""
    with session_factory(engine)() as session:
        series = visible_series_row(session, series_instance_uid, projects)
        return SeriesReferences(
            series_instance_uid=series_instance_uid,
            references=stored_references(session, series.id),
            referenced_by=[
                s.series_instance_uid
                for s in referencing_series(session, series_instance_uid, projects=projects)
            ],
        )


__all__ = [
    "SeriesReferences",
    "record_references",
    "referenced_series_uids",
    "referencing_series",
    "series_references",
    "stored_references",
]
