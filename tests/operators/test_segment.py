"""segment-ct and segment-otsu on the synthetic phantoms, through written and re-read SEGs."""

from io import BytesIO

import highdicom as hd
import numpy as np
import pytest
from pydicom import Dataset, dcmread

from kaapana.errors import InvalidInput
from kaapana.operators.segment_ct import SegmentCTParameters, segment_ct
from kaapana.operators.segment_otsu import SegmentOtsuParameters, segment_otsu
from kaapana.testing.synthetic import ct_series, mr_series, phantom_volume


def _reread(seg: Dataset) -> hd.seg.Segmentation:
    buffer = BytesIO()
    seg.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return hd.seg.Segmentation.from_dataset(dcmread(buffer))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("seed", [0, 11])
def test_segment_ct_recovers_the_phantom_organs(seed):
    ct = ct_series(slices=40, rows=96, columns=112, seed=seed)
    shuffled = [ct[index] for index in np.random.default_rng(seed).permutation(len(ct))]
    seg = _reread(segment_ct(shuffled))
    uids = [ds.SOPInstanceUID for ds in ct]  # instance order, as the phantom is laid out
    labels = [item.SegmentLabel for item in seg.SegmentSequence]
    assert labels == ["body", "lungs", "bones"]
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1, 2, 3])
    truth = phantom_volume(rows=96, columns=112, slices=40, seed=seed).masks
    for number, label in enumerate(labels):
        assert _dice(pixels[..., number].astype(bool), truth[label]) >= 0.9, label


def test_segment_ct_seg_references_source_series_and_frame_of_reference():
    ct = ct_series(slices=12)
    seg = _reread(segment_ct(ct))
    assert seg.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == ct[0].StudyInstanceUID
    assert seg.SegmentationType == "BINARY"
    assert seg.SegmentsOverlap == "YES"  # the lungs and bones lie inside the body
    reference = seg.ReferencedSeriesSequence[0]
    assert reference.SeriesInstanceUID == ct[0].SeriesInstanceUID
    assert {item.ReferencedSOPInstanceUID for item in reference.ReferencedInstanceSequence} == {
        ds.SOPInstanceUID for ds in ct
    }
    types = [item.SegmentedPropertyTypeCodeSequence[0].CodeValue for item in seg.SegmentSequence]
    assert types == ["38266002", "39607008", "272673000"]  # SNOMED body, lung, bone
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"AUTOMATIC"}


def test_segment_ct_is_deterministic_per_input_and_parameters():
    ct = ct_series(slices=8)
    first, again = segment_ct(ct), segment_ct(list(reversed(ct)))
    assert first.SOPInstanceUID == again.SOPInstanceUID
    other = segment_ct(ct, SegmentCTParameters(bone_threshold_hu=400))
    assert other.SOPInstanceUID != first.SOPInstanceUID


def test_segment_ct_refuses_mr():
    with pytest.raises(InvalidInput, match=r"'Modality' must be one of \['CT'\], got 'MR'"):
        segment_ct(mr_series(slices=4))


def test_segment_ct_refuses_inconsistent_slice_spacing():
    ct = ct_series(slices=10)
    del ct[4]
    with pytest.raises(InvalidInput, match="inconsistent slice spacing"):
        segment_ct(ct)


def test_segment_ct_refuses_mixed_series():
    ct = ct_series(slices=4)
    other = ct_series(slices=4, seed=2)
    with pytest.raises(InvalidInput, match="'SeriesInstanceUID' differs"):
        segment_ct([*ct[:2], *other[2:]])


def test_segment_otsu_finds_the_head_in_mr():
    mr = mr_series(slices=16, rows=96, columns=96)
    seg = _reread(segment_otsu(mr, SegmentOtsuParameters(structure="head")))
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "69536005"
    uids = [ds.SOPInstanceUID for ds in mr]
    mask = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0].astype(bool)
    image = np.stack([ds.pixel_array for ds in mr]).astype(float)
    middle = len(mr) // 2
    assert mask[middle, 48, 48]
    assert not mask[:, 0, 0].any()
    assert image[mask].mean() > 10 * image[~mask].mean()
    # the head's dark skull and CSF rings are inside the mask, not cut out
    assert mask[middle].sum() > (image[middle] > 300).sum()


def test_segment_otsu_refuses_unaccepted_modality_and_uniform_images():
    with pytest.raises(InvalidInput, match="got 'CT'"):
        segment_otsu(ct_series(slices=4))
    mr = mr_series(slices=4)
    for ds in mr:
        ds.PixelData = bytes(len(ds.PixelData))
    with pytest.raises(InvalidInput, match="uniform"):
        segment_otsu(mr)
