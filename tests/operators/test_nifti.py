"""convert-to-nifti with the real dcm2niix, and SEG -> NIfTI -> SEG round trips."""

import json
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread

from kaapana.errors import InvalidInput
from kaapana.operators.nifti import (
    ConvertToNiftiParameters,
    convert_series,
    nifti_to_seg,
    seg_to_nifti,
    specs_from_labels_file,
)
from kaapana.testing.synthetic import ct_segmentation, ct_series, write_datasets


@pytest.fixture
def ct(tmp_path: Path) -> list[Path]:
    return write_datasets(ct_series(slices=20, rows=64, columns=80), tmp_path / "dicom")


def _pixels(seg, image) -> np.ndarray:
    return hd.seg.Segmentation.from_dataset(seg).get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in image],
        segment_numbers=list(range(1, len(seg.SegmentSequence) + 1)),
        assert_missing_frames_are_empty=True,
    )


def _type_codes(seg) -> list[str]:
    return [item.SegmentedPropertyTypeCodeSequence[0].CodeValue for item in seg.SegmentSequence]


def test_convert_series_writes_nifti_and_sidecar(ct, tmp_path):
    result = convert_series(ct, tmp_path / "out", ConvertToNiftiParameters(filename="ct"))
    assert result.image.name == "ct.nii.gz"
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["Modality"] == "CT"
    image = nib.load(result.image)
    assert image.shape == (80, 64, 20)
    assert np.allclose(image.header.get_zooms(), (2.0, 2.0, 2.5), atol=1e-4)
    hu = image.get_fdata()
    assert hu.min() < -900 and hu.max() > 600  # air and cortical bone in Hounsfield units


@pytest.mark.parametrize(
    ("labels", "layout"),
    [(("lungs", "bones", "liver"), "labelmap"), (("body", "lungs", "bones", "liver"), "stacked")],
)
def test_seg_round_trip_through_nifti_keeps_every_voxel(ct, tmp_path, labels, layout):
    image = [dcmread(path) for path in ct]
    seg = ct_segmentation(image, labels=labels)
    nifti = convert_series(ct, tmp_path / "out")
    result = seg_to_nifti(seg, image, tmp_path / "out", reference=nifti.image)
    label_map = nib.load(result.label_map)
    assert np.allclose(label_map.affine, nib.load(nifti.image).affine)
    found_layout, segments = specs_from_labels_file(result.labels)
    assert found_layout == layout
    assert [spec.label for _, spec in segments] == list(labels)
    # the labels sit on the image: lung voxels are air-filled in the dcm2niix image
    data = np.asanyarray(label_map.dataobj)
    lungs = data == 1 if layout == "labelmap" else data[..., 1] > 0
    assert np.median(nib.load(nifti.image).get_fdata()[lungs]) < -800
    back = nifti_to_seg(result.label_map, image, segments, stacked=layout == "stacked")
    assert back.ReferencedSeriesSequence[0].SeriesInstanceUID == image[0].SeriesInstanceUID
    assert back.FrameOfReferenceUID == image[0].FrameOfReferenceUID
    assert [item.SegmentLabel for item in back.SegmentSequence] == list(labels)
    assert _type_codes(back) == _type_codes(seg)
    assert np.array_equal(_pixels(back, image), _pixels(seg, image))


def test_seg_without_its_reference_image_is_refused(ct, tmp_path):
    image = [dcmread(path) for path in ct]
    other = ct_series(slices=20, rows=64, columns=80, seed=4, series_number=2)
    with pytest.raises(InvalidInput, match="a SEG needs its reference image"):
        seg_to_nifti(ct_segmentation(other, seed=4), image, tmp_path)


def test_label_map_on_another_grid_is_refused(ct, tmp_path):
    image = [dcmread(path) for path in ct]
    seg = ct_segmentation(image, labels=("lungs",))
    result = seg_to_nifti(seg, image, tmp_path)
    _, segments = specs_from_labels_file(result.labels)
    smaller = ct_series(slices=10, rows=64, columns=80, seed=0)
    with pytest.raises(InvalidInput, match="does not match the image series"):
        nifti_to_seg(result.label_map, smaller, segments)


def test_failing_conversion_is_reported(tmp_path):
    text = tmp_path / "not-dicom.dcm"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match="dcm2niix made 0 NIfTI files"):
        convert_series([text], tmp_path / "out")
