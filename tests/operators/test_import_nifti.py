"""import-nifti: geometry round trips through the real dcm2niix, folder and nnU-Net layouts."""

import json
from datetime import date
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread

from kaapana.errors import InvalidInput
from kaapana.operators.import_nifti import (
    ImportNiftiParameters,
    import_nifti,
    nifti_to_series,
)
from kaapana.operators.nifti import convert_series
from kaapana.operators.series import sort_series
from kaapana.testing.synthetic import phantom_volume


def _affine(rotation_degrees: float, flips: tuple[int, int, int]) -> np.ndarray:
    angle = np.deg2rad(rotation_degrees)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(np.array(flips) * np.array([0.8, 0.9, 2.5]))
    affine[:3, 3] = [-101.5, 37.25, -60.0]
    return affine


def _phantom_nifti(path: Path, affine: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A CT phantom as int16 HU (x, y, z) and its lung labels, saved as NIfTI."""
    phantom = phantom_volume(rows=48, columns=56, slices=18, seed=seed)
    hu = np.transpose(phantom.hu, (2, 1, 0)).astype(np.int16)
    labels = np.transpose(
        phantom.masks["lungs"] * 1 + phantom.masks["liver"] * 2, (2, 1, 0)
    ).astype(np.uint8)
    nib.save(nib.Nifti1Image(hu, affine), path)
    return hu, labels


@pytest.mark.parametrize(
    ("rotation", "flips"), [(0.0, (1, 1, 1)), (0.0, (-1, 1, -1)), (17.0, (1, -1, 1))]
)
def test_geometry_round_trip_through_dcm2niix_keeps_affine_and_voxels(tmp_path, rotation, flips):
    affine = _affine(rotation, flips)
    hu, _ = _phantom_nifti(tmp_path / "image.nii.gz", affine)
    series = nifti_to_series(
        tmp_path / "image.nii.gz",
        modality="CT",
        patient_id="P1",
        study_instance_uid="1.2.3",
        study_date=date(2020, 5, 4),
    )
    paths = []
    for ds in series:
        path = tmp_path / "dicom" / f"{ds.SOPInstanceUID}.dcm"
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    back = nib.load(convert_series(paths, tmp_path / "nifti").image)
    original = nib.as_closest_canonical(nib.Nifti1Image(hu, affine))
    converted = nib.as_closest_canonical(back)
    assert np.allclose(converted.affine, original.affine, atol=1e-3)
    assert np.array_equal(converted.get_fdata(), original.get_fdata())


def _seg_labels(seg_path: Path, image_paths: list[Path]) -> np.ndarray:
    """The SEG as a label array on the NIfTI voxel axes (x, y, z)."""
    image, _ = sort_series([dcmread(path) for path in image_paths])
    seg = hd.seg.Segmentation.from_dataset(dcmread(seg_path))
    numbers = list(seg.segment_numbers)
    pixels = seg.get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in image],
        segment_numbers=numbers,
        combine_segments=True,
        assert_missing_frames_are_empty=True,
    )
    return np.transpose(pixels, (2, 1, 0))


def test_nnunet_layout_imports_images_and_labels(tmp_path):
    root = tmp_path / "Dataset001_Lungs"
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        (root / folder).mkdir(parents=True)
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "name": "Lungs",
                "channel_names": {"0": "CT"},
                "labels": {"background": 0, "lungs": 1, "liver": 2},
                "numTraining": 2,
                "file_ending": ".nii.gz",
            }
        )
    )
    affine = _affine(0.0, (1, 1, 1))
    expected = {}
    for seed, case in enumerate(("case_001", "case_002")):
        _, labels = _phantom_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", affine, seed)
        nib.save(nib.Nifti1Image(labels, affine), root / "labelsTr" / f"{case}.nii.gz")
        expected[case] = labels
    _phantom_nifti(root / "imagesTs" / "case_101_0000.nii.gz", affine, 7)

    cases = import_nifti(root, tmp_path / "out")
    assert [case.case for case in cases] == ["case_001", "case_002", "case_101"]
    for case in cases[:2]:
        (image,) = case.series
        first = dcmread(image[0])
        assert (first.Modality, first.PatientID) == ("CT", case.case)
        seg = dcmread(case.segmentation)
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
        assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID
        assert [item.SegmentLabel for item in seg.SegmentSequence] == ["lungs", "liver"]
        assert seg.SegmentsOverlap == "NO"  # one label per voxel
        type_codes = [i.SegmentedPropertyTypeCodeSequence[0].CodeValue for i in seg.SegmentSequence]
        assert type_codes == ["39607008", "10200004"]  # SNOMED lung, liver
        assert np.array_equal(_seg_labels(case.segmentation, image), expected[case.case])
    assert cases[2].segmentation is None
    again = import_nifti(root, tmp_path / "again")
    assert [p.name for p in again[0].series[0]] == [p.name for p in cases[0].series[0]]


def test_folder_layout_uses_metadata(tmp_path):
    root = tmp_path / "upload"
    root.mkdir()
    affine = _affine(0.0, (-1, -1, 1))
    _, labels = _phantom_nifti(root / "scan.nii.gz", affine)
    nib.save(nib.Nifti1Image(labels, affine), root / "scan_labels.nii.gz")
    (root / "metadata.json").write_text(
        json.dumps(
            {
                "labels": {"1": "lungs", "2": "liver"},
                "cases": [
                    {
                        "image": "scan.nii.gz",
                        "label_map": "scan_labels.nii.gz",
                        "patient_id": "SUBJ-01",
                        "patient_name": "Subject^One",
                        "study_date": "2021-03-04",
                        "series_description": "CT chest",
                    }
                ],
            }
        )
    )
    (case,) = import_nifti(root, tmp_path / "out")
    first = dcmread(case.series[0][0])
    assert (first.PatientID, str(first.PatientName), first.StudyDate) == (
        "SUBJ-01",
        "Subject^One",
        "20210304",
    )
    assert first.SeriesDescription == "CT chest"
    assert np.array_equal(_seg_labels(case.segmentation, case.series[0]), labels)


def test_mr_float_images_become_mr_series(tmp_path):
    data = np.random.default_rng(0).random((16, 12, 5)).astype(np.float32) * 300.0
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "t1.nii.gz")
    series = nifti_to_series(
        tmp_path / "t1.nii.gz",
        modality="MR",
        patient_id="P",
        study_instance_uid="1.2.3",
        study_date=date(2020, 1, 1),
    )
    assert {ds.Modality for ds in series} == {"MR"}
    stored = np.stack([ds.pixel_array for ds in series], axis=-1).transpose(1, 0, 2)
    correlation = np.corrcoef(stored.ravel(), data.ravel())[0, 1]
    assert correlation > 0.9999


def test_bad_layouts_are_refused(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"cases": [{"image": "../x.nii.gz"}]}))
    with pytest.raises(InvalidInput, match=r"metadata\.json' is not valid"):
        import_nifti(tmp_path, tmp_path / "out")
    (tmp_path / "metadata.json").write_text(
        json.dumps({"cases": [{"image": "../x.nii.gz", "patient_id": "P"}]})
    )
    with pytest.raises(InvalidInput, match=r"'\.\./x\.nii\.gz' is not a file inside"):
        import_nifti(tmp_path, tmp_path / "out")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {}}))
    with pytest.raises(InvalidInput, match=r"not an nnU-Net v2 dataset\.json"):
        import_nifti(tmp_path, tmp_path / "out", ImportNiftiParameters(layout="nnunet"))
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.int16), sheared), tmp_path / "s.nii.gz")
    with pytest.raises(InvalidInput, match="sheared"):
        nifti_to_series(
            tmp_path / "s.nii.gz",
            modality="CT",
            patient_id="P",
            study_instance_uid="1.2.3",
            study_date=date(2020, 1, 1),
        )
