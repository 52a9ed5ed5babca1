"""Exchange with a remote PACS: which studies to ask for, and the table of what it answered.

The parameters name a registered DICOM node (``kaapana nodes add``) and study-level matching
keys; ``study_identifier`` turns them into a C-FIND identifier (PS3.4 C.2.2.2: wildcards ``*``
and ``?`` in text, date ranges, list of UID matching). The associations themselves are
``kaapana.dicomnet.qr_scu`` and ``kaapana.dicomnet.scu``.
"""

import csv
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydicom.dataset import Dataset

from kaapana.archive.metadata import UID_PATTERN
from kaapana.catalog.datasets import check_dataset_name
from kaapana.errors import InvalidInput

NODE_DESCRIPTION: Final = "Name of a registered DICOM node (`kaapana nodes list`)."
STUDY_COLUMNS: Final = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
"""The return keys of a study query, in the order of the CSV columns."""


class StudyFilters(BaseModel):
    """Study-level matching keys; an empty one matches everything."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field("", max_length=64, description="PatientID; `*` and `?` match any.")
    patient_name: str = Field(
        "", max_length=64, description="PatientName (`Family^Given`); `*` and `?` match any."
    )
    study_date_from: date | None = Field(None, description="Earliest StudyDate (inclusive).")
    study_date_to: date | None = Field(None, description="Latest StudyDate (inclusive).")
    modality: str = Field(
        "", max_length=16, description="A modality the study holds (ModalitiesInStudy), e.g. CT."
    )
    accession_number: str = Field("", max_length=16, description="AccessionNumber.")
    study_description: str = Field(
        "", max_length=64, description="StudyDescription; `*` and `?` match any."
    )

    @field_validator(
        "patient_id", "patient_name", "modality", "accession_number", "study_description"
    )
    @classmethod
    def _single_value(cls, value: str) -> str:
        if "\\" in value or any(ord(c) < 32 for c in value):
            raise ValueError("must be one value without backslash or control characters")
        return value.strip()

    @model_validator(mode="after")
    def _date_range(self) -> Self:
        start, end = self.study_date_from, self.study_date_to
        if start is not None and end is not None and start > end:
            raise ValueError(f"study_date_from {start} is after study_date_to {end}")
        return self

    def filtering(self) -> bool:
        """Whether any key restricts the matches."""
        return any(getattr(self, name) for name in StudyFilters.model_fields)


class QueryPacsParameters(StudyFilters):
    node: str = Field(min_length=1, max_length=64, description=NODE_DESCRIPTION)
    limit: int = Field(
        1000, ge=1, le=100_000, description="At most this many studies; more are cut off."
    )


class SendDicomParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str = Field(min_length=1, max_length=64, description=NODE_DESCRIPTION)
    allow_failures: bool = Field(
        False,
        description="Instances the node refuses do not fail the series' task: report.json "
        "lists them. Off: any refused instance fails the task (its log lists each instance).",
    )


class RetrieveFromPacsParameters(StudyFilters):
    node: str = Field(min_length=1, max_length=64, description=NODE_DESCRIPTION)
    study_instance_uids: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="Studies to retrieve; with filters too, those of them that match.",
    )
    dataset: str | None = Field(
        None,
        description="Dataset of the run's project that receives the retrieved series "
        "(created when missing); unset: only the archive.",
    )
    max_studies: int = Field(
        100, ge=1, le=10_000, description="Refuse to retrieve when more studies match."
    )
    allow_failures: bool = Field(
        False,
        description="Objects the node fails to send do not fail the run: retrieved.json lists "
        "the counts. Off: any failed sub-operation fails the task.",
    )

    @field_validator("study_instance_uids")
    @classmethod
    def _uids(cls, values: list[str]) -> list[str]:
        for value in values:
            if len(value) > 64 or not UID_PATTERN.match(value):
                raise ValueError(f"{value[:80]!r} is not a valid UID")
        return list(dict.fromkeys(values))

    @field_validator("dataset")
    @classmethod
    def _dataset_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_dataset_name(value, field="dataset")
        except InvalidInput as exc:
            raise ValueError(exc.detail) from exc

    @model_validator(mode="after")
    def _something_chosen(self) -> Self:
        if not self.study_instance_uids and not self.filtering():
            raise ValueError(
                "name the studies: give study_instance_uids or at least one filter "
                "(patient_id, study_date_from, modality, ...)"
            )
        return self


def _date_range(start: date | None, end: date | None) -> str:
    if start is None and end is None:
        return ""
    low = start.strftime("%Y%m%d") if start else ""
    high = end.strftime("%Y%m%d") if end else ""
    return low if low == high else f"{low}-{high}"


def study_identifier(filters: StudyFilters, study_instance_uids: Sequence[str] = ()) -> Dataset:
    """A Study Root C-FIND identifier at study level with the filters and every return key."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in STUDY_COLUMNS:
        setattr(ds, keyword, "")
    ds.StudyInstanceUID = "\\".join(study_instance_uids)
    ds.PatientID = filters.patient_id
    ds.PatientName = filters.patient_name
    ds.StudyDate = _date_range(filters.study_date_from, filters.study_date_to)
    ds.ModalitiesInStudy = filters.modality
    ds.AccessionNumber = filters.accession_number
    ds.StudyDescription = filters.study_description
    return ds


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None or value == "":
        return ""
    if keyword == "ModalitiesInStudy" and not isinstance(value, str):
        return "\\".join(str(item) for item in value)
    return str(value)


def study_rows(found: Sequence[Dataset]) -> list[dict[str, str]]:
    """One row per answer, the return keys as text (multiple values joined by backslash)."""
    rows = [{keyword: _text(ds, keyword) for keyword in STUDY_COLUMNS} for ds in found]
    return sorted(rows, key=lambda row: (row["StudyDate"], row["StudyInstanceUID"]))


def write_study_table(
    rows: Sequence[dict[str, str]], folder: Path, *, node: str, truncated: bool
) -> tuple[Path, Path]:
    """``studies.json`` (the node, whether the answer was cut off, the rows) and
    ``studies.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"node": node, "truncated": truncated, "studies": list(rows)}
    as_json = folder / "studies.json"
    as_json.write_text(json.dumps(document, indent=2))
    as_csv = folder / "studies.csv"
    with as_csv.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=STUDY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return as_json, as_csv


__all__ = [
    "NODE_DESCRIPTION",
    "STUDY_COLUMNS",
    "QueryPacsParameters",
    "RetrieveFromPacsParameters",
    "SendDicomParameters",
    "StudyFilters",
    "study_identifier",
    "study_rows",
    "write_study_table",
]
