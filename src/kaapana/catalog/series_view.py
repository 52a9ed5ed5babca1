"""What the series viewer shows of one series: the image series, its SEG overlays and links.

A SEG is shown over the image series it references; an image series with the SEGs that
reference it. Everything is resolved here in one session, so the viewer page needs no
request to find out which series to load, and each linked series comes with the Study
Instance UID its DICOMweb URLs need.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.datadict import keyword_for_tag
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope, visible_series
from kaapana.catalog.dicom_json import DicomJson
from kaapana.catalog.lookup import visible_series_row
from kaapana.catalog.references import referencing_series, stored_references
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Patient, Series

SEGMENTATION_MODALITY = "SEG"


@dataclass(frozen=True, slots=True)
class SeriesLink:
    series_instance_uid: str
    study_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    number_of_instances: int


@dataclass(frozen=True, slots=True)
class SeriesView:
    series: SeriesLink
    patient_id: str
    patient_name: str
    study_date: str
    study_description: str
    image: SeriesLink | None  # the series whose pixels are drawn (None: a SEG without it)
    segmentations: list[SeriesLink]  # the SEG series drawn over ``image``
    references: list[SeriesLink]  # the visible series this series references
    missing_references: list[str]  # referenced series UIDs not here (or not visible)
    referenced_by: list[SeriesLink]
    keywords: dict[str, str] = field(default_factory=dict)  # tag -> keyword, for the table


def _link(series: Series) -> SeriesLink:
    return SeriesLink(
        series_instance_uid=series.series_instance_uid,
        study_instance_uid=series.study.study_instance_uid,
        modality=series.modality,
        series_number=series.series_number,
        series_description=series.series_description,
        number_of_instances=series.number_of_instances,
    )


def _tags(element_map: DicomJson) -> Iterator[str]:
    for tag, element in element_map.items():
        yield tag
        if element.get("vr") == "SQ":
            for item in element.get("Value") or []:
                if isinstance(item, dict):
                    yield from _tags(item)


def attribute_keywords(element_map: DicomJson) -> dict[str, str]:
    """Keywords of the (nested) tags of one object's DICOM JSON; private tags have none."""
    found: dict[str, str] = {}
    for tag in set(_tags(element_map)):
        try:
            keyword = keyword_for_tag(int(tag, 16))
        except ValueError:
            continue
        if keyword:
            found[tag] = keyword
    return found


def _visible(session: Session, uids: list[str], projects: ProjectScope) -> list[Series]:
    if not uids:
        return []
    statement = select(Series).where(Series.series_instance_uid.in_(uids)).order_by(Series.id)
    if projects is not None:
        statement = statement.where(visible_series(Series, projects))
    return list(session.scalars(statement))


def _first_metadata(session: Session, series_pk: int) -> DicomJson:
    found = session.scalars(
        select(Instance.metadata_json)
        .where(Instance.series_pk == series_pk)
        .order_by(Instance.instance_number, Instance.id)
        .limit(1)
    ).first()
    return found or {}


def series_view(*, engine: Engine, series_instance_uid: str, projects: ProjectScope) -> SeriesView:
    """The viewer's plan for a series the caller sees; ``NotFound`` otherwise."""
    with session_factory(engine)() as session:
        series = visible_series_row(session, series_instance_uid, projects)
        referenced_uids = stored_references(session, series.id)
        references = _visible(session, referenced_uids, projects)
        referenced_by = referencing_series(session, series_instance_uid, projects=projects)
        if series.modality == SEGMENTATION_MODALITY:
            images = [s for s in references if s.modality != SEGMENTATION_MODALITY]
            image = images[0] if images else None
            segmentations = [series]
        else:
            image = series
            segmentations = [s for s in referenced_by if s.modality == SEGMENTATION_MODALITY]
        keywords: dict[str, str] = {}
        for shown in {series.id, image.id if image is not None else series.id}:
            keywords |= attribute_keywords(_first_metadata(session, shown))
        study = series.study
        patient = session.get(Patient, study.patient_pk)
        seen = {s.series_instance_uid for s in references}
        return SeriesView(
            series=_link(series),
            patient_id=patient.patient_id if patient else "",
            patient_name=patient.patient_name if patient else "",
            study_date=study.study_date,
            study_description=study.study_description,
            image=_link(image) if image is not None else None,
            segmentations=[_link(s) for s in segmentations],
            references=[_link(s) for s in references],
            missing_references=[uid for uid in referenced_uids if uid not in seen],
            referenced_by=[_link(s) for s in referenced_by],
            keywords=keywords,
        )


__all__ = ["SeriesLink", "SeriesView", "attribute_keywords", "series_view"]
