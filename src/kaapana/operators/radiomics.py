"""Radiomics features per segment of a DICOM SEG over its image series, with PyRadiomics.

The SEG's masks are placed on the image series' voxels by the source instances they reference
(:func:`~kaapana.operators.series.segment_masks`), and both go to PyRadiomics as SimpleITK
images with the series' spacing, so shape features come out in mm and mm³. The features are
PyRadiomics' names as they are (``original_shape_MeshVolume``), which the literature and the
IBSI reference values use; its diagnostics are left out. A few key features per segment are
also named for the catalog, as ``<segment label>.<feature>``.
"""

import csv
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import numpy as np
import SimpleITK as sitk
from pydantic import BaseModel, ConfigDict, Field
from pydicom import Dataset
from radiomics import featureextractor

from kaapana.errors import InvalidInput
from kaapana.operators.series import load_volume, segment_masks

__all__ = [
    "FeatureClassValues",
    "RadiomicsParameters",
    "SegmentFeatures",
    "SeriesFeatures",
    "segment_features",
    "write_features",
]

FEATURES_JSON: Final = "features.json"
FEATURES_CSV: Final = "features.csv"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
# Identifying columns before the features, in the per-series and the run-level table.
ID_COLUMNS: Final = (
    "seg_series_instance_uid",
    "image_series_instance_uid",
    "segment_number",
    "segment_label",
    "segmented_property_type",
    "voxels",
    "error",
)

# PyRadiomics logs each feature class and setting at INFO, which would flood every task log.
logging.getLogger("radiomics").setLevel(logging.ERROR)


class FeatureClassValues(StrEnum):
    firstorder = "firstorder"
    shape = "shape"
    glcm = "glcm"
    glrlm = "glrlm"
    glszm = "glszm"
    gldm = "gldm"
    ngtdm = "ngtdm"


class RadiomicsParameters(BaseModel):
    """Options of radiomics (PyRadiomics settings and what the catalog indexes)."""

    model_config = ConfigDict(extra="forbid")

    feature_classes: list[FeatureClassValues] = Field(
        default_factory=lambda: list(FeatureClassValues),
        min_length=1,
        description="PyRadiomics feature classes to compute (default: all of them).",
    )
    bin_width: float = Field(
        default=25.0, gt=0, description="Grey-level bin width (HU for CT), PyRadiomics binWidth."
    )
    indexed_features: list[str] = Field(
        default_factory=lambda: [
            "original_shape_MeshVolume",
            "original_shape_SurfaceArea",
            "original_shape_Sphericity",
            "original_firstorder_Mean",
            "original_firstorder_Variance",
            "original_firstorder_Median",
        ],
        max_length=50,
        description="Features of each segment indexed on the SEG series as catalog fields "
        "radiomics.<segment label>.<feature> (the CSV and JSON hold every feature).",
    )


@dataclass(frozen=True, slots=True)
class SegmentFeatures:
    number: int
    label: str
    property_type: str
    voxels: int
    features: dict[str, float] = field(default_factory=dict)
    error: str = ""
    """Why the segment has no features (empty, or refused by PyRadiomics)."""


@dataclass(frozen=True, slots=True)
class SeriesFeatures:
    seg_series_instance_uid: str
    image_series_instance_uid: str
    segments: list[SegmentFeatures]

    def indexed(self, names: Sequence[str]) -> dict[str, float]:
        """``<label>.<feature>`` of the chosen features, labels made field-safe."""
        found = {}
        for segment in self.segments:
            label = _UNSAFE.sub("_", segment.label).strip("_") or f"segment{segment.number}"
            for name in names:
                if name in segment.features:
                    found[f"{label}.{name}"] = segment.features[name]
        return found


def _extractor(parameters: RadiomicsParameters) -> featureextractor.RadiomicsFeatureExtractor:
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=parameters.bin_width)
    extractor.disableAllFeatures()
    for feature_class in parameters.feature_classes:
        extractor.enableFeatureClassByName(feature_class.value)
    return extractor


def _number(value: Any) -> float | None:
    try:
        number = float(np.asarray(value).item())
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def segment_features(
    image: Sequence[Dataset], seg: Dataset, parameters: RadiomicsParameters | None = None
) -> SeriesFeatures:
    """Features of every segment of ``seg`` over its source series ``image``. A segment
    without voxels, or one PyRadiomics refuses, gets its reason instead of features."""
    parameters = parameters or RadiomicsParameters()
    volume = load_volume(image)
    segmentation, numbers, masks = segment_masks(seg, volume.datasets)
    spacing = tuple(reversed(volume.spacing))  # SimpleITK: column, row, slice
    picture = sitk.GetImageFromArray(volume.array)
    picture.SetSpacing(spacing)
    extractor = _extractor(parameters)
    segments = []
    for channel, number in enumerate(numbers):
        description = segmentation.get_segment_description(number)
        mask = masks[..., channel]
        voxels = int(mask.sum())
        common = {
            "number": number,
            "label": str(description.segment_label),
            "property_type": str(description.segmented_property_type.meaning),
            "voxels": voxels,
        }
        if voxels == 0:
            segments.append(SegmentFeatures(**common, error="the segment is empty"))
            continue
        label_image = sitk.GetImageFromArray(mask.astype(np.uint8))
        label_image.SetSpacing(spacing)
        try:
            raw = extractor.execute(picture, label_image, label=1)
        except (ValueError, RuntimeError) as exc:
            segments.append(SegmentFeatures(**common, error=f"PyRadiomics refused it: {exc}"))
            continue
        features = {
            name: number_value
            for name, value in raw.items()
            if not name.startswith("diagnostics_") and (number_value := _number(value)) is not None
        }
        segments.append(SegmentFeatures(**common, features=features))
    if not segments:
        raise InvalidInput(f"SEG {seg.SeriesInstanceUID} has no segments")
    return SeriesFeatures(
        seg_series_instance_uid=str(seg.SeriesInstanceUID),
        image_series_instance_uid=str(volume.datasets[0].SeriesInstanceUID),
        segments=segments,
    )


def feature_rows(result: SeriesFeatures) -> list[dict[str, Any]]:
    """One table row per segment: the identifying columns, then the features."""
    return [
        {
            "seg_series_instance_uid": result.seg_series_instance_uid,
            "image_series_instance_uid": result.image_series_instance_uid,
            "segment_number": segment.number,
            "segment_label": segment.label,
            "segmented_property_type": segment.property_type,
            "voxels": segment.voxels,
            "error": segment.error,
            **segment.features,
        }
        for segment in result.segments
    ]


def write_table(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """A CSV of the rows: identifying columns first, then every feature any row has, sorted."""
    features = sorted({name for row in rows for name in row} - set(ID_COLUMNS))
    with path.open("w", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=[*ID_COLUMNS, *features], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_features(
    result: SeriesFeatures, out_dir: Path, parameters: RadiomicsParameters
) -> tuple[Path, Path]:
    """``features.json`` (with the settings) and ``features.csv`` of one SEG series."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "seg_series_instance_uid": result.seg_series_instance_uid,
        "image_series_instance_uid": result.image_series_instance_uid,
        "parameters": parameters.model_dump(mode="json"),
        "segments": [
            {
                "number": s.number,
                "label": s.label,
                "segmented_property_type": s.property_type,
                "voxels": s.voxels,
                "error": s.error,
                "features": s.features,
            }
            for s in result.segments
        ],
    }
    json_path = out_dir / FEATURES_JSON
    json_path.write_text(json.dumps(document, indent=1))
    return json_path, write_table(feature_rows(result), out_dir / FEATURES_CSV)


def read_features(path: Path) -> SeriesFeatures:
    """A ``features.json`` written by :func:`write_features`."""
    document = json.loads(path.read_text())
    return SeriesFeatures(
        seg_series_instance_uid=document["seg_series_instance_uid"],
        image_series_instance_uid=document["image_series_instance_uid"],
        segments=[
            SegmentFeatures(
                number=item["number"],
                label=item["label"],
                property_type=item["segmented_property_type"],
                voxels=item["voxels"],
                features=item["features"],
                error=item["error"],
            )
            for item in document["segments"]
        ],
    )
