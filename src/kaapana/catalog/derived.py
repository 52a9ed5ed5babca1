"""Derived fields: values computed per series from its DICOM JSON and index rows.

They answer questions the raw attributes answer badly (a CT localizer is an X-ray image; "when
was this acquired" has four possible sources) and are searched, sorted and counted like any
other field. ``DERIVED_FIELDS`` is a registry: a new field is one ``DerivedField`` added to it.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from pydicom.datadict import tag_for_keyword

from kaapana.catalog.completeness import is_completeness_finding
from kaapana.catalog.fields import FieldKindValues
from kaapana.catalog.flatten import Document
from kaapana.db.models import Patient, Series, SeriesValidation, Study

DerivedValue = str | float
# The modalities whose labels live in their instances (one SEG or RTSTRUCT object each).
ANNOTATION_MODALITIES: Final = frozenset({"SEG", "RTSTRUCT"})


@dataclass(frozen=True, slots=True)
class SeriesFacts:
    """What a derived field may look at: the index rows, the series' DICOM JSON and what the
    per-series jobs found.

    ``instances`` holds the instance-level JSON of annotation series (SEG, RTSTRUCT) only; other
    series have their instance-level values in ``document`` already, for search purposes.
    ``referenced_by`` are the series referencing this one that share a project with it;
    ``validation`` is None until the series is validated.
    """

    series: Series
    study: Study
    patient: Patient
    document: Document
    instances: Sequence[Document] = field(default_factory=tuple)
    references: Sequence[str] = field(default_factory=tuple)
    referenced_by: Sequence[str] = field(default_factory=tuple)
    validation: SeriesValidation | None = None
    features: Sequence[tuple[str, str, float]] = field(default_factory=tuple)
    """``(source, name, value)`` of the numbers workflows computed for the series."""


@dataclass(frozen=True, slots=True)
class DerivedField:
    name: str
    kind: FieldKindValues
    description: str
    compute: Callable[[SeriesFacts], Iterable[DerivedValue]]


def values_of(document: Document, keyword: str) -> list[object]:
    tag = tag_for_keyword(keyword)
    element = document.get(f"{tag:08X}") if tag is not None else None
    return list(element.get("Value") or []) if isinstance(element, dict) else []


def first_text(document: Document, keyword: str) -> str:
    values = values_of(document, keyword)
    return str(values[0]).strip() if values and values[0] is not None else ""


def _curated_modality(facts: SeriesFacts) -> list[DerivedValue]:
    modality = facts.series.modality or first_text(facts.document, "Modality")
    image_type = {str(value).upper() for value in values_of(facts.document, "ImageType")}
    if modality == "CT" and "LOCALIZER" in image_type:
        return ["XR"]
    return [modality] if modality else []


def _digits(value: str) -> str:
    return "".join(ch for ch in value.split(".")[0] if ch.isdigit())


def _acquisition_datetime(facts: SeriesFacts) -> list[DerivedValue]:
    document = facts.document
    stamp = _digits(first_text(document, "AcquisitionDateTime"))
    if len(stamp) >= 8:
        return [stamp[:14]]
    for day, time in (
        ("AcquisitionDate", "AcquisitionTime"),
        ("SeriesDate", "SeriesTime"),
        ("StudyDate", "StudyTime"),
    ):
        on = _digits(first_text(document, day))
        if len(on) == 8:
            return [(on + _digits(first_text(document, time)))[:14]]
    return []


def _arrival_time(facts: SeriesFacts) -> list[DerivedValue]:
    return [facts.series.created_at.strftime("%Y%m%d%H%M%S")]


_AGE = re.compile(r"(\d{1,3})([DWMY])")
_AGE_UNIT_YEARS: Final = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _date(value: str) -> date | None:
    try:
        return datetime.strptime(_digits(value)[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _patient_age_years(facts: SeriesFacts) -> list[DerivedValue]:
    match = _AGE.fullmatch(first_text(facts.document, "PatientAge").upper())
    if match:
        return [round(int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2)], 2)]
    born = _date(facts.patient.patient_birth_date or first_text(facts.document, "PatientBirthDate"))
    seen = _date(facts.study.study_date or first_text(facts.document, "StudyDate"))
    if born is None or seen is None or seen < born:
        return []
    years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    return [float(years)]


def _labels(document: Document, sequence: str, label: str) -> list[DerivedValue]:
    found: list[DerivedValue] = []
    for item in values_of(document, sequence):
        if isinstance(item, dict):
            found += [text for text in (first_text(item, label),) if text]
    return found


def _annotation_labels(facts: SeriesFacts) -> list[DerivedValue]:
    labels: list[DerivedValue] = []
    for document in (facts.document, *facts.instances):
        labels += _labels(document, "SegmentSequence", "SegmentLabel")
        labels += _labels(document, "StructureSetROISequence", "ROIName")
    return list(dict.fromkeys(labels))


def _referenced_series(facts: SeriesFacts) -> list[DerivedValue]:
    return list(facts.references)


def _referenced_by(facts: SeriesFacts) -> list[DerivedValue]:
    return list(facts.referenced_by)


def _validation_status(facts: SeriesFacts) -> list[DerivedValue]:
    return [facts.validation.status] if facts.validation else []


def _validation_messages(facts: SeriesFacts) -> list[DerivedValue]:
    if facts.validation is None:
        return []
    return [*facts.validation.errors, *facts.validation.warnings]


def _completeness_messages(facts: SeriesFacts) -> list[DerivedValue]:
    if facts.validation is None:
        return []
    return [message for message in facts.validation.errors if is_completeness_finding(message)]


def _complete(facts: SeriesFacts) -> list[DerivedValue]:
    if facts.validation is None:
        return []
    return ["false" if _completeness_messages(facts) else "true"]


_K = FieldKindValues
DERIVED_FIELDS: dict[str, DerivedField] = {
    entry.name: entry
    for entry in (
        DerivedField(
            "curated_modality",
            _K.text,
            "Modality, with CT localizers (ImageType contains LOCALIZER) as XR.",
            _curated_modality,
        ),
        DerivedField(
            "acquisition_datetime",
            _K.datetime,
            "AcquisitionDateTime, else AcquisitionDate+Time, SeriesDate+Time, StudyDate+Time.",
            _acquisition_datetime,
        ),
        DerivedField(
            "arrival_time",
            _K.datetime,
            "When the archive first received the series (UTC).",
            _arrival_time,
        ),
        DerivedField(
            "patient_age_years",
            _K.number,
            "PatientAge (045Y, 006M, ...) in years, else from PatientBirthDate and StudyDate.",
            _patient_age_years,
        ),
        DerivedField(
            "annotation_labels",
            _K.text,
            "SEG segment labels and RTSTRUCT ROI names, from every instance of the series.",
            _annotation_labels,
        ),
        DerivedField(
            "referenced_series",
            _K.text,
            "The SeriesInstanceUIDs a SEG, RTSTRUCT or SR series references, arrived or not.",
            _referenced_series,
        ),
        DerivedField(
            "referenced_by",
            _K.text,
            "The SeriesInstanceUIDs of the series (of a shared project) referencing this one.",
            _referenced_by,
        ),
        DerivedField(
            "validation_status",
            _K.text,
            "The series' validation: ok, warning or error; absent until validated.",
            _validation_status,
        ),
        DerivedField(
            "validation_messages",
            _K.text,
            "The validation's errors and warnings, completeness findings included.",
            _validation_messages,
        ),
        DerivedField(
            "complete",
            _K.text,
            "true when the completeness checks found nothing, else false; absent until validated.",
            _complete,
        ),
        DerivedField(
            "completeness_messages",
            _K.text,
            "What the completeness checks found (missing instance numbers, spacing gaps, ...).",
            _completeness_messages,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class FeatureFamily:
    """Fields ``<source>.<name>`` a workflow's features make (``series_features``): their names
    are open, so the family is one entry, ``<source>.*``, beside the derived fields."""

    source: str
    kind: FieldKindValues
    description: str


FEATURE_FAMILIES: dict[str, FeatureFamily] = {
    family.source: family
    for family in (
        FeatureFamily(
            "radiomics",
            _K.number,
            "PyRadiomics features of a SEG's segments (radiomics workflow): "
            "radiomics.<segment label>.<feature>, e.g. radiomics.lungs.original_shape_MeshVolume.",
        ),
    )
}


def feature_values(facts: SeriesFacts) -> list[tuple[str, FieldKindValues, float]]:
    """The catalog fields of the series' features, of the registered families only."""
    return [
        (f"{source}.{name}", FEATURE_FAMILIES[source].kind, value)
        for source, name, value in facts.features
        if source in FEATURE_FAMILIES
    ]


def family_of(name: str) -> FeatureFamily | None:
    """The feature family a field name belongs to (``radiomics.lungs.x``), if any."""
    source, dot, rest = name.partition(".")
    return FEATURE_FAMILIES.get(source) if dot and rest else None


def derived_kinds() -> dict[str, FieldKindValues]:
    """Derived fields by name, and feature families as ``<source>.*``."""
    kinds = {name: entry.kind for name, entry in DERIVED_FIELDS.items()}
    kinds.update({f"{source}.*": family.kind for source, family in FEATURE_FAMILIES.items()})
    return kinds


__all__ = [
    "ANNOTATION_MODALITIES",
    "DERIVED_FIELDS",
    "FEATURE_FAMILIES",
    "DerivedField",
    "DerivedValue",
    "FeatureFamily",
    "SeriesFacts",
    "derived_kinds",
    "family_of",
    "feature_values",
    "first_text",
    "values_of",
]
