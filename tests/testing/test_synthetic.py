from collections import Counter, defaultdict
from datetime import date
from io import BytesIO
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom import Dataset, dcmread, dcmwrite
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from kaapana.testing.synthetic import (
    SEGMENT_LABELS,
    ct_segmentation,
    ct_series,
    demo_cohort,
    mr_series,
    phantom_volume,
    write_datasets,
)

SMALL = {"rows": 64, "columns": 64, "slices": 12}

CT_KEYWORDS = [
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "StudyDescription",
    "ReferringPhysicianName", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
    "Modality", "BodyPartExamined", "Manufacturer", "SOPClassUID", "SOPInstanceUID", "ImageType",
    "KVP", "FrameOfReferenceUID", "InstanceNumber", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SliceLocation",
    "RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth", "PatientPosition",
]  # fmt: skip


def to_bytes(ds: Dataset) -> bytes:
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def hu(ds: Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_round_trips_through_part10_files(tmp_path: Path) -> None:
    ct = ct_series(**SMALL)
    paths = write_datasets(ct, tmp_path)

    assert len(paths) == len(ct)
    for original, path in zip(ct, paths, strict=True):
        assert path == (
            tmp_path
            / original.PatientID
            / original.StudyInstanceUID
            / original.SeriesInstanceUID
            / f"{original.SOPInstanceUID}.dcm"
        )
        read = dcmread(path)
        assert read.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert read.file_meta.MediaStorageSOPClassUID == CTImageStorage
        assert read.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
        assert "ImplementationClassUID" in read.file_meta
        missing = [keyword for keyword in CT_KEYWORDS if keyword not in read]
        assert not missing
        assert read.SOPInstanceUID == original.SOPInstanceUID
        np.testing.assert_array_equal(read.pixel_array, original.pixel_array)
    assert len({ds.SOPInstanceUID for ds in ct}) == len(ct)


def test_ct_geometry_steps_by_slice_thickness_along_the_normal() -> None:
    ct = ct_series(pixel_spacing=1.5, slice_thickness=3.0, **SMALL)

    orientation = np.array(ct[0].ImageOrientationPatient, dtype=float)
    np.testing.assert_array_equal(orientation, [1, 0, 0, 0, 1, 0])
    normal = np.cross(orientation[:3], orientation[3:])
    distances = [float(np.dot(normal, ds.ImagePositionPatient)) for ds in ct]
    np.testing.assert_allclose(np.diff(distances), -3.0)
    np.testing.assert_allclose([float(ds.SliceLocation) for ds in ct], distances)
    assert [ds.InstanceNumber for ds in ct] == list(range(1, len(ct) + 1))
    assert {ds.FrameOfReferenceUID for ds in ct} == {ct[0].FrameOfReferenceUID}
    assert all([float(v) for v in ds.PixelSpacing] == [1.5, 1.5] for ds in ct)
    # The image is centred on the patient axis.
    x, y, _ = (float(v) for v in ct[0].ImagePositionPatient)
    assert (x, y) == (-(64 - 1) / 2 * 1.5, -(64 - 1) / 2 * 1.5)


def test_ct_pixels_show_the_phantom_tissues() -> None:
    ct = ct_series(**SMALL)
    phantom = phantom_volume(**SMALL)
    middle = len(ct) // 2
    image = hu(ct[middle])
    masks = {label: mask[middle] for label, mask in phantom.masks.items()}

    assert masks["lungs"].sum() > 100
    assert -900 < image[masks["lungs"]].mean() < -800
    assert image[masks["bones"]].mean() > 300
    assert -1050 < image[~masks["body"]].mean() < -950
    # Liver on the patient's right, i.e. the left half of the image, lower in the series.
    liver_slice = int(np.argmax(phantom.masks["liver"].sum(axis=(1, 2))))
    liver = phantom.masks["liver"][liver_slice]
    assert 50 < hu(ct[liver_slice])[liver].mean() < 70
    columns = np.nonzero(liver)[1]
    assert columns.mean() < 64 / 2
    assert liver_slice > middle


def test_same_arguments_give_identical_bytes() -> None:
    first = ct_series(**SMALL)
    second = ct_series(**SMALL)
    assert [to_bytes(ds) for ds in first] == [to_bytes(ds) for ds in second]
    assert to_bytes(ct_segmentation(first)) == to_bytes(ct_segmentation(second))
    assert [to_bytes(ds) for ds in mr_series(**SMALL)] == [
        to_bytes(ds) for ds in mr_series(**SMALL)
    ]

    other = ct_series(seed=1, **SMALL)
    assert other[0].SeriesInstanceUID != first[0].SeriesInstanceUID
    assert other[5].PixelData != first[5].PixelData


def test_segmentation_references_the_ct_and_matches_its_liver(tmp_path: Path) -> None:
    ct = ct_series(**SMALL)
    (path,) = write_datasets([ct_segmentation(ct)], tmp_path)
    seg = hd.seg.segread(path)

    assert seg.Modality == "SEG"
    assert seg.StudyInstanceUID == ct[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
    assert seg.SeriesInstanceUID != ct[0].SeriesInstanceUID
    referenced = {
        item.ReferencedSOPInstanceUID
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert referenced == {ds.SOPInstanceUID for ds in ct}
    assert [item.SegmentLabel for item in seg.SegmentSequence] == list(SEGMENT_LABELS)

    liver_number = list(SEGMENT_LABELS).index("liver") + 1
    labels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[ds.SOPInstanceUID for ds in ct],
        segment_numbers=[liver_number],
    )[..., 0].astype(bool)
    volume = np.stack([hu(ds) for ds in ct])
    assert labels.sum() > 100
    assert 50 < volume[labels].mean() < 70
    np.testing.assert_array_equal(labels, phantom_volume(**SMALL).masks["liver"])


def test_segmentation_label_subset_and_wrong_seed() -> None:
    ct = ct_series(**SMALL)
    seg = ct_segmentation(ct, labels=["liver"])
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["liver"]

    with pytest.raises(ValueError, match="seed"):
        ct_segmentation(ct, seed=1)
    with pytest.raises(ValueError, match="complete series"):
        ct_segmentation(ct[:-1])


def test_mr_series_has_mr_attributes_and_geometry() -> None:
    mr = mr_series(**SMALL)
    first = mr[0]
    assert first.SOPClassUID == MRImageStorage
    assert first.Modality == "MR"
    assert float(first.MagneticFieldStrength) > 0
    assert float(first.RepetitionTime) > float(first.EchoTime) > 0
    assert first.ScanningSequence == "SE"
    assert "RescaleIntercept" not in first
    steps = np.diff([float(ds.ImagePositionPatient[2]) for ds in mr])
    np.testing.assert_allclose(steps, -float(first.SliceThickness))
    image = mr[len(mr) // 2].pixel_array
    assert image[image.shape[0] // 2, image.shape[1] // 2] > 400  # brain
    assert image[0, 0] < 100  # air


def test_demo_cohort_composition(tmp_path: Path) -> None:
    cohort = demo_cohort(patients=3, rows=32, columns=32, slices=4)
    assert isinstance(next(iter(cohort)), Dataset)  # lazily produced

    datasets = list(demo_cohort(patients=3, rows=32, columns=32, slices=4))
    assert Counter(ds.Modality for ds in datasets) == {"CT": 5 * 4, "SEG": 5, "MR": 4}
    studies: defaultdict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for ds in datasets:
        studies[ds.PatientID][ds.StudyInstanceUID].add(ds.Modality)
    assert [sorted(map(sorted, patient.values())) for patient in studies.values()] == [
        [["CT", "SEG"], ["CT", "SEG"]],
        [["CT", "SEG"], ["MR"]],
        [["CT", "SEG"], ["CT", "SEG"]],
    ]
    study_dates = {ds.StudyInstanceUID: ds.StudyDate for ds in datasets}
    first_patient = datasets[0].PatientID
    assert len({study_dates[uid] for uid in studies[first_patient]}) == 2

    paths = write_datasets(datasets, tmp_path)
    assert len(set(paths)) == len(datasets)
    assert all(path.is_file() for path in paths)


def test_512_matrix() -> None:
    ct = ct_series(rows=512, columns=512, slices=3, pixel_spacing=0.8, study_date=date(2020, 2, 29))
    assert ct[1].pixel_array.shape == (512, 512)
    assert ct[1].StudyDate == "20200229"
    assert -1050 < hu(ct[1])[:8, :8].mean() < -950
