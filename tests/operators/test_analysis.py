"""Evaluation metrics and radiomics on their own: edge cases and named refusals."""

import numpy as np
import pytest
from pydicom.sr.codedict import codes

from kaapana.errors import InvalidInput
from kaapana.operators.evaluation import (
    EvaluateSegmentationParameters,
    MatchValues,
    compare_masks,
    evaluate_pair,
)
from kaapana.operators.radiomics import RadiomicsParameters, segment_features
from kaapana.operators.series import SegmentSpec, build_segmentation, segment_masks, sort_series
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation

SPACING = (2.5, 2.0, 2.0)


def cube() -> np.ndarray:
    mask = np.zeros((8, 32, 32), dtype=bool)
    mask[2:6, 8:14, 8:14] = True
    return mask


def test_identical_masks_agree_and_a_shift_by_one_slice_costs_its_spacing() -> None:
    same = compare_masks(cube(), cube(), SPACING)
    assert (same.dice, same.iou, same.hd95_mm, same.volume_difference_ml) == (1.0, 1.0, 0.0, 0.0)
    shifted = compare_masks(cube(), np.roll(cube(), 1, axis=0), SPACING)
    assert shifted.dice == pytest.approx(3 / 4) and shifted.iou == pytest.approx(3 / 5)
    assert shifted.hd95_mm == pytest.approx(2.5)
    grown = np.zeros_like(cube())
    grown[2:6, 8:14, 8:15] = True  # one more column: 4 * 6 voxels of 10 mm³
    assert compare_masks(cube(), grown, SPACING).volume_difference_ml == pytest.approx(0.24)


def test_empty_masks() -> None:
    empty = np.zeros_like(cube())
    both = compare_masks(empty, empty, SPACING)
    assert (both.dice, both.hd95_mm, both.status) == (1.0, 0.0, "ok")
    missed = compare_masks(cube(), empty, SPACING)
    assert (missed.dice, missed.hd95_mm) == (0.0, None)
    assert missed.status == "the prediction segment is empty"


def test_segments_match_by_label_or_by_property_code() -> None:
    ct = ct_series(rows=32, columns=32, slices=8)
    reference = ct_segmentation(ct, labels=("lungs",))
    ordered, _ = sort_series(ct)
    _, _, masks = segment_masks(reference, ordered)
    prediction = build_segmentation(
        ordered,
        {"pulmo": masks[..., 0]},
        [SegmentSpec("pulmo", codes.cid7150.AnatomicalStructure, codes.SCT.Lung)],
        operator="test-model",
        parameters={},
        series_description="model",
    )
    by_code = EvaluateSegmentationParameters(prediction_tag="p", reference_tag="r")
    (metrics,) = evaluate_pair(ct, reference, prediction, by_code)
    assert (metrics.label, metrics.prediction_segment, metrics.dice) == ("lungs", 1, 1.0)
    by_label = by_code.model_copy(update={"match": MatchValues.label})
    (unmatched,) = evaluate_pair(ct, reference, prediction, by_label)
    assert unmatched.dice is None and unmatched.status == "no matching segment in the prediction"
    with pytest.raises(ValueError, match="exactly one of prediction_tag and prediction_dataset"):
        EvaluateSegmentationParameters(reference_tag="r")


def test_radiomics_names_an_empty_segment_and_refuses_uneven_slices() -> None:
    ct = ct_series(rows=32, columns=32, slices=8)
    reference = ct_segmentation(ct, labels=("lungs",))
    ordered, _ = sort_series(ct)
    _, _, masks = segment_masks(reference, ordered)
    seg = build_segmentation(
        ordered,
        {"lungs": masks[..., 0], "nothing": np.zeros_like(masks[..., 0])},
        [
            SegmentSpec("lungs", codes.cid7150.AnatomicalStructure, codes.SCT.Lung),
            SegmentSpec("nothing", codes.cid7150.AnatomicalStructure, codes.SCT.Liver),
        ],
        operator="test-model",
        parameters={},
        series_description="model",
    )
    parameters = RadiomicsParameters(feature_classes=["firstorder"])
    lungs, nothing = segment_features(ct, seg, parameters).segments
    assert lungs.features and not lungs.error
    assert (nothing.voxels, nothing.features, nothing.error) == (0, {}, "the segment is empty")

    uneven = ct_series(rows=32, columns=32, slices=8)
    uneven[3].ImagePositionPatient = [*uneven[3].ImagePositionPatient[:2], 100.0]
    with pytest.raises(InvalidInput, match="inconsistent slice spacing"):
        segment_features(uneven, reference, parameters)
    other = ct_series(patient_id="OTHER", rows=32, columns=32, slices=8, seed=4)
    with pytest.raises(InvalidInput, match="needs its reference image"):
        segment_features(other, reference, parameters)
