"""A table of series metadata: one row per series, chosen DICOM attributes as columns.

The values come from the series-level DICOM JSON the index keeps (PS3.18 F.2: the attributes
of the series' instances other than the per-instance ones), so no file is read. A column's type
follows the data dictionary: numbers for numeric VRs, text otherwise, and a list where the
attribute may hold several values (VM other than 1). The CSV writes such lists joined with a
backslash, DICOM's own separator; Parquet keeps them as lists.
"""

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydicom.datadict import dictionary_VM, dictionary_VR, tag_for_keyword

__all__ = ["CollectMetadataParameters", "SeriesRow", "metadata_table", "write_metadata"]

_NUMBER_VRS: Final = frozenset({"DS", "IS", "FL", "FD", "SS", "US", "SL", "UL", "SV", "UV"})
_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})
# Columns every row has, from the index rather than the DICOM JSON.
BASE_COLUMNS: Final = (
    "series_instance_uid",
    "study_instance_uid",
    "modality",
    "number_of_instances",
    "tags",
    "datasets",
)

SeriesRow = Mapping[str, Any]
"""What a row is made of: ``BASE_COLUMNS`` values and ``metadata`` (series DICOM JSON)."""


class CollectMetadataParameters(BaseModel):
    """Options of collect-metadata: the attributes to collect, by DICOM keyword."""

    model_config = ConfigDict(extra="forbid")

    attributes: list[str] = Field(
        default_factory=lambda: [
            "PatientID",
            "PatientSex",
            "PatientAge",
            "StudyDate",
            "StudyDescription",
            "SeriesNumber",
            "SeriesDescription",
            "BodyPartExamined",
            "Manufacturer",
            "ManufacturerModelName",
            "SliceThickness",
            "PixelSpacing",
            "Rows",
            "Columns",
        ],
        min_length=1,
        max_length=500,
        description="DICOM keywords of the columns, in order (sequences and binary data are "
        "not tabular and are refused).",
    )

    @field_validator("attributes")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        problems = []
        for keyword in value:
            tag = tag_for_keyword(keyword)
            if tag is None:
                problems.append(f"{keyword!r} is not a DICOM keyword")
            elif set(dictionary_VR(tag).split(" or ")) & _BINARY_VRS:
                problems.append(f"{keyword!r} is an {dictionary_VR(tag)} attribute, not tabular")
        if problems:
            raise ValueError("; ".join(problems))
        if len(set(value)) != len(value):
            raise ValueError("names an attribute twice")
        return value


def _plain(value: Any) -> Any:
    return value.get("Alphabetic", "") if isinstance(value, dict) else value


def _column(keyword: str) -> tuple[pa.DataType, bool]:
    tag = tag_for_keyword(keyword)
    assert tag is not None  # checked by the parameters
    scalar = pa.float64() if dictionary_VR(tag) in _NUMBER_VRS else pa.string()
    many = dictionary_VM(tag) != "1"
    return (pa.list_(scalar) if many else scalar), many


def _value(metadata: Mapping[str, Any], keyword: str, many: bool, number: bool) -> Any:
    element = metadata.get(f"{tag_for_keyword(keyword):08X}")
    values = [_plain(v) for v in (element or {}).get("Value", []) if v is not None]
    values = [float(v) if number else str(v) for v in values]
    if many:
        return values or None
    return values[0] if values else None


def metadata_table(series: Sequence[SeriesRow], parameters: CollectMetadataParameters) -> pa.Table:
    """One row per series: ``BASE_COLUMNS``, then the chosen attributes."""
    columns: dict[str, list[Any]] = {
        "series_instance_uid": [str(s["series_instance_uid"]) for s in series],
        "study_instance_uid": [str(s["study_instance_uid"]) for s in series],
        "modality": [str(s["modality"]) for s in series],
        "number_of_instances": [int(s["number_of_instances"]) for s in series],
        "tags": [list(s.get("tags", ())) for s in series],
        "datasets": [list(s.get("datasets", ())) for s in series],
    }
    types: dict[str, pa.DataType] = {
        "series_instance_uid": pa.string(),
        "study_instance_uid": pa.string(),
        "modality": pa.string(),
        "number_of_instances": pa.int64(),
        "tags": pa.list_(pa.string()),
        "datasets": pa.list_(pa.string()),
    }
    for keyword in parameters.attributes:
        kind, many = _column(keyword)
        number = (kind.value_type if many else kind) == pa.float64()
        columns[keyword] = [_value(s["metadata"], keyword, many, number) for s in series]
        types[keyword] = kind
    schema = pa.schema([(name, types[name]) for name in columns])
    return pa.table(columns, schema=schema)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return "\\".join(_csv_cell(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else value


def write_metadata(table: pa.Table, out_dir: Path, name: str = "metadata") -> tuple[Path, Path]:
    """``<name>.csv`` and ``<name>.parquet`` of the table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parquet = out_dir / f"{name}.parquet"
    pq.write_table(table, parquet)
    text = out_dir / f"{name}.csv"
    with text.open("w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow([_csv_cell(value) for value in row.values()])
    return text, parquet
