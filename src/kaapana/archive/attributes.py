"""What the index knows, by DICOM keyword: query levels, unique keys, columns, computed attributes.

``INDEX_COLUMNS`` is the one keyword -> column map; C-FIND, QIDO-RS and the catalog all match
index columns through it, and anything not in it comes from the precomputed DICOM JSON.
"""

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from pydicom.dataset import Dataset
from sqlalchemy.orm import InstrumentedAttribute

from kaapana.db.models import Instance, Patient, Series, Study
from kaapana.errors import InvalidInput


class QueryRetrieveLevelValues(StrEnum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


class InformationModelValues(StrEnum):
    """The Query/Retrieve information model, chosen by the SOP class of the request."""

    PATIENT_ROOT = "PATIENT_ROOT"
    STUDY_ROOT = "STUDY_ROOT"


_Level = QueryRetrieveLevelValues
LEVELS: Final = tuple(QueryRetrieveLevelValues)  # top of the hierarchy first
MODEL_LEVELS: Final = MappingProxyType(
    {
        InformationModelValues.PATIENT_ROOT: LEVELS,
        InformationModelValues.STUDY_ROOT: LEVELS[1:],
    }
)
UNIQUE_KEYS: Final = MappingProxyType(
    {
        _Level.PATIENT: "PatientID",
        _Level.STUDY: "StudyInstanceUID",
        _Level.SERIES: "SeriesInstanceUID",
        _Level.IMAGE: "SOPInstanceUID",
    }
)


def depth(level: QueryRetrieveLevelValues) -> int:
    """0 for PATIENT down to 3 for IMAGE."""
    return LEVELS.index(level)


def levels_down_to(
    model: InformationModelValues, level: QueryRetrieveLevelValues
) -> tuple[QueryRetrieveLevelValues, ...]:
    """The model's levels from its root down to ``level``, whose unique keys every response has."""
    levels = MODEL_LEVELS[model]
    return levels[: levels.index(level) + 1]


@dataclass(frozen=True, slots=True)
class IndexColumn:
    level: QueryRetrieveLevelValues
    column: InstrumentedAttribute[Any]


INDEX_COLUMNS: Final[MappingProxyType[str, IndexColumn]] = MappingProxyType(
    {
        "PatientID": IndexColumn(_Level.PATIENT, Patient.patient_id),
        "IssuerOfPatientID": IndexColumn(_Level.PATIENT, Patient.issuer_of_patient_id),
        "PatientName": IndexColumn(_Level.PATIENT, Patient.patient_name),
        "PatientBirthDate": IndexColumn(_Level.PATIENT, Patient.patient_birth_date),
        "PatientSex": IndexColumn(_Level.PATIENT, Patient.patient_sex),
        "StudyInstanceUID": IndexColumn(_Level.STUDY, Study.study_instance_uid),
        "StudyDate": IndexColumn(_Level.STUDY, Study.study_date),
        "StudyTime": IndexColumn(_Level.STUDY, Study.study_time),
        "AccessionNumber": IndexColumn(_Level.STUDY, Study.accession_number),
        "StudyID": IndexColumn(_Level.STUDY, Study.study_id),
        "StudyDescription": IndexColumn(_Level.STUDY, Study.study_description),
        "ReferringPhysicianName": IndexColumn(_Level.STUDY, Study.referring_physician_name),
        "SeriesInstanceUID": IndexColumn(_Level.SERIES, Series.series_instance_uid),
        "Modality": IndexColumn(_Level.SERIES, Series.modality),
        "SeriesNumber": IndexColumn(_Level.SERIES, Series.series_number),
        "SeriesDescription": IndexColumn(_Level.SERIES, Series.series_description),
        "BodyPartExamined": IndexColumn(_Level.SERIES, Series.body_part_examined),
        "SeriesDate": IndexColumn(_Level.SERIES, Series.series_date),
        "SeriesTime": IndexColumn(_Level.SERIES, Series.series_time),
        "NumberOfSeriesRelatedInstances": IndexColumn(_Level.SERIES, Series.number_of_instances),
        "SOPInstanceUID": IndexColumn(_Level.IMAGE, Instance.sop_instance_uid),
        "SOPClassUID": IndexColumn(_Level.IMAGE, Instance.sop_class_uid),
        "InstanceNumber": IndexColumn(_Level.IMAGE, Instance.instance_number),
        "NumberOfFrames": IndexColumn(_Level.IMAGE, Instance.number_of_frames),
    }
)

# Computed from the index for each page of results (see ``computed``), by the levels that have them.
COMPUTED_ATTRIBUTES: Final = MappingProxyType(
    {
        "NumberOfPatientRelatedStudies": frozenset({_Level.PATIENT, _Level.STUDY}),
        "NumberOfPatientRelatedSeries": frozenset({_Level.PATIENT, _Level.STUDY}),
        "NumberOfPatientRelatedInstances": frozenset({_Level.PATIENT, _Level.STUDY}),
        "NumberOfStudyRelatedSeries": frozenset({_Level.STUDY}),
        "NumberOfStudyRelatedInstances": frozenset({_Level.STUDY}),
        "ModalitiesInStudy": frozenset({_Level.STUDY}),
        "SOPClassesInStudy": frozenset({_Level.STUDY}),
    }
)


def query_level(identifier: Dataset, model: InformationModelValues) -> QueryRetrieveLevelValues:
    """The identifier's level, checked against the model; ``InvalidInput`` names what is wrong."""
    raw = str(identifier.get("QueryRetrieveLevel") or "").strip()
    if not raw:
        raise InvalidInput("'QueryRetrieveLevel' is missing from the identifier")
    allowed = MODEL_LEVELS[model]
    if raw not in {level.value for level in allowed}:
        # Short enough for a DIMSE Error Comment (64 characters) to carry it whole.
        raise InvalidInput(f"'QueryRetrieveLevel' must be {'/'.join(allowed)}, got {raw[:16]!r}")
    return QueryRetrieveLevelValues(raw)


__all__ = [
    "COMPUTED_ATTRIBUTES",
    "INDEX_COLUMNS",
    "LEVELS",
    "MODEL_LEVELS",
    "UNIQUE_KEYS",
    "IndexColumn",
    "InformationModelValues",
    "QueryRetrieveLevelValues",
    "depth",
    "levels_down_to",
    "query_level",
]
