"""Agreement of a predicted and a reference segmentation of one image series, per label.

Both SEGs are placed on the voxels of the image series they reference, so they compare voxel
for voxel whatever frames each stores. Per matched segment: Dice, IoU (Jaccard), the 95th
percentile Hausdorff distance in mm and the volumes. The surface distance follows the common
definition (MONAI's ``compute_hausdorff_distance(percentile=95)``, DeepMind's surface-distance
"robust Hausdorff"): surface voxels are the mask's voxels with a 6-connected neighbour outside
it, distances are Euclidean in mm (the series' spacing) from each surface voxel to the nearest
surface voxel of the other mask, and HD95 is the larger of the two directed 95th percentiles.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Self

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydicom import Dataset
from scipy import ndimage

from kaapana.errors import InvalidInput
from kaapana.operators.series import segment_masks, sort_series

__all__ = [
    "EvaluateSegmentationParameters",
    "LabelMetrics",
    "MatchValues",
    "compare_masks",
    "evaluate_pair",
]


class MatchValues(StrEnum):
    """How segments of the two SEGs are paired."""

    label = "label"  # SegmentLabel, case-insensitive
    property_type = "property_type"  # SegmentedPropertyTypeCodeSequence (scheme and value)
    either = "either"  # by label, then the segments left over by property type


class EvaluateSegmentationParameters(BaseModel):
    """Options of evaluate-segmentation: which input SEGs are predictions and which are
    references (a project tag or a dataset each), and how segments are matched."""

    model_config = ConfigDict(extra="forbid")

    prediction_tag: str | None = Field(default=None, min_length=1, max_length=64)
    prediction_dataset: str | None = Field(default=None, min_length=1, max_length=64)
    reference_tag: str | None = Field(default=None, min_length=1, max_length=64)
    reference_dataset: str | None = Field(default=None, min_length=1, max_length=64)
    match: MatchValues = Field(
        default=MatchValues.either, description="Pair segments by label, property type or both."
    )
    labels: list[str] = Field(
        default_factory=list,
        description="Reference segment labels to evaluate (case-insensitive); empty: all.",
    )

    @model_validator(mode="after")
    def _one_selector_each(self) -> Self:
        for role in ("prediction", "reference"):
            given = [
                kind for kind in ("tag", "dataset") if getattr(self, f"{role}_{kind}") is not None
            ]
            if len(given) != 1:
                raise ValueError(f"give exactly one of {role}_tag and {role}_dataset")
        return self

    def role(self, tags: Sequence[str], datasets: Sequence[str]) -> set[str]:
        """Which roles (prediction, reference) a series with these tags and datasets plays."""
        roles = set()
        for role in ("prediction", "reference"):
            tag, dataset = getattr(self, f"{role}_tag"), getattr(self, f"{role}_dataset")
            if (tag is not None and tag in tags) or (dataset is not None and dataset in datasets):
                roles.add(role)
        return roles


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    label: str
    reference_segment: int | None
    prediction_segment: int | None
    dice: float | None
    iou: float | None
    hd95_mm: float | None
    reference_ml: float | None
    prediction_ml: float | None
    volume_difference_ml: float | None
    """Prediction minus reference."""
    status: str = "ok"

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _surface(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1))
    return mask & ~eroded


def _directed_percentile(
    source: npt.NDArray[np.bool_],
    target: npt.NDArray[np.bool_],
    spacing: tuple[float, float, float],
    percentile: float,
) -> float:
    distances = ndimage.distance_transform_edt(~target, sampling=spacing)
    return float(np.percentile(distances[source], percentile))


def compare_masks(
    reference: npt.NDArray[np.bool_],
    prediction: npt.NDArray[np.bool_],
    spacing: tuple[float, float, float],
    *,
    label: str = "",
    segments: tuple[int | None, int | None] = (None, None),
    percentile: float = 95.0,
) -> LabelMetrics:
    """Metrics of two masks ``(slices, rows, columns)`` on one grid of ``spacing`` mm. Two
    empty masks agree perfectly (Dice 1, HD95 0); one empty mask has no surface distance."""
    voxel_ml = math.prod(spacing) / 1000.0
    in_reference, in_prediction = int(reference.sum()), int(prediction.sum())
    overlap = int(np.logical_and(reference, prediction).sum())
    union = in_reference + in_prediction - overlap
    dice = 1.0 if union == 0 else 2.0 * overlap / (in_reference + in_prediction)
    iou = 1.0 if union == 0 else overlap / union
    status = "ok"
    hd95: float | None
    if union == 0:
        hd95 = 0.0
    elif in_reference == 0 or in_prediction == 0:
        hd95 = None
        status = f"the {'reference' if in_reference == 0 else 'prediction'} segment is empty"
    else:
        surface_r, surface_p = _surface(reference), _surface(prediction)
        hd95 = max(
            _directed_percentile(surface_r, surface_p, spacing, percentile),
            _directed_percentile(surface_p, surface_r, spacing, percentile),
        )
    return LabelMetrics(
        label=label,
        reference_segment=segments[0],
        prediction_segment=segments[1],
        dice=dice,
        iou=iou,
        hd95_mm=hd95,
        reference_ml=in_reference * voxel_ml,
        prediction_ml=in_prediction * voxel_ml,
        volume_difference_ml=(in_prediction - in_reference) * voxel_ml,
        status=status,
    )


def _code(description: hd.seg.SegmentDescription) -> tuple[str, str]:
    concept = description.segmented_property_type
    return (concept.scheme_designator, concept.value)


def _match(
    reference: hd.seg.Segmentation,
    prediction: hd.seg.Segmentation,
    how: MatchValues,
) -> list[tuple[int, int | None]]:
    """(reference segment, prediction segment or None) for every reference segment."""
    ref = {n: reference.get_segment_description(n) for n in reference.segment_numbers}
    pred = {n: prediction.get_segment_description(n) for n in prediction.segment_numbers}
    left = dict(pred)
    pairs: dict[int, int | None] = dict.fromkeys(ref)
    if how in (MatchValues.label, MatchValues.either):
        by_label = {str(d.segment_label).casefold(): n for n, d in left.items()}
        for number, description in ref.items():
            found = by_label.get(str(description.segment_label).casefold())
            if found is not None and found in left:
                pairs[number] = found
                del left[found]
    if how in (MatchValues.property_type, MatchValues.either):
        for number, description in ref.items():
            if pairs[number] is not None:
                continue
            found = next((n for n, d in left.items() if _code(d) == _code(description)), None)
            if found is not None:
                pairs[number] = found
                del left[found]
    return list(pairs.items())


def evaluate_pair(
    image: Sequence[Dataset],
    reference: Dataset,
    prediction: Dataset,
    parameters: EvaluateSegmentationParameters,
) -> list[LabelMetrics]:
    """Metrics per reference segment (restricted to ``parameters.labels``) of ``prediction``
    against ``reference``, both SEGs of the image series ``image``."""
    ordered, slice_step = sort_series(image)
    reference_seg, reference_numbers, reference_masks = segment_masks(reference, ordered)
    prediction_seg, prediction_numbers, prediction_masks = segment_masks(prediction, ordered)
    row_spacing, column_spacing = (float(value) for value in ordered[0].PixelSpacing)
    spacing = (slice_step, row_spacing, column_spacing)
    wanted = {label.casefold() for label in parameters.labels}
    results = []
    for number, matched in _match(reference_seg, prediction_seg, parameters.match):
        label = str(reference_seg.get_segment_description(number).segment_label)
        if wanted and label.casefold() not in wanted:
            continue
        if matched is None:
            results.append(
                LabelMetrics(
                    label, number, None, None, None, None, None, None, None,
                    status="no matching segment in the prediction",
                )
            )  # fmt: skip
            continue
        results.append(
            compare_masks(
                reference_masks[..., reference_numbers.index(number)],
                prediction_masks[..., prediction_numbers.index(matched)],
                spacing,
                label=label,
                segments=(number, matched),
            )
        )
    if not results:
        raise InvalidInput(
            f"SEG {reference.SeriesInstanceUID} has none of the labels {parameters.labels}"
        )
    return results
