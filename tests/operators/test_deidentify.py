"""De-identification by PS3.15 Annex E on synthetic series and pydicom's test files."""

import json
from datetime import date
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import UID

from kaapana.errors import InvalidInput
from kaapana.operators.deidentify import (
    Deidentifier,
    DeidentifyParameters,
    SafePrivateTag,
    deidentify_files,
)
from kaapana.testing.synthetic import ct_segmentation, ct_series, mr_series, write_datasets

KEY = b"project-secret-key-0123456789abcdef"
TEST_FILES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "SC_rgb.dcm")


def _originals(ds: Dataset) -> set[str]:
    """Every identifying string of the source: names, IDs, birth date and all date values."""
    values = {str(ds.PatientName), str(ds.PatientID)}
    for elem in ds.iterall():
        if elem.VR in ("DA", "DT") and elem.value:
            for value in elem.value if elem.VM > 1 else [elem.value]:
                values.add(str(value)[:8])
        if elem.keyword == "PatientBirthDate" and elem.value:
            values.add(str(elem.value))
    return {value for value in values if value}


def _assert_nothing_left(source: Dataset, path: Path) -> None:
    originals = _originals(source)
    result = dcmread(path)
    for elem in result.iterall():
        if elem.tag == 0x7FE00010 or elem.VR in ("OB", "OW", "UN", "SQ"):
            continue
        text = str(elem.value)
        leaked = [value for value in originals if value in text]
        assert not leaked, f"{elem.keyword or elem.tag} still holds an original value"
    encoded = path.read_bytes()
    for value in originals:
        assert value.encode() not in encoded, "an original value is in the encoded bytes"


@pytest.fixture
def patients(tmp_path: Path) -> dict[str, list[Path]]:
    """Two patients: A with a CT, its SEG and an MR on another date; B with a CT."""
    ct_a = ct_series(
        patient_id="PID-7781",
        patient_name="Quixote^Zebulon",
        slices=6,
        patient_birth_date=date(1957, 6, 21),
        study_date=date(2023, 5, 17),
    )
    seg_a = ct_segmentation(ct_a)
    mr_a = mr_series(
        patient_id="PID-7781",
        patient_name="Quixote^Zebulon",
        slices=4,
        patient_birth_date=date(1957, 6, 21),
        study_date=date(2023, 8, 2),
    )
    ct_b = ct_series(
        patient_id="PID-9034",
        patient_name="Marple^Jane",
        slices=4,
        seed=3,
        patient_birth_date=date(1948, 2, 9),
        study_date=date(2022, 11, 30),
    )
    return {
        "ct_a": write_datasets(ct_a, tmp_path / "in"),
        "seg_a": write_datasets([seg_a], tmp_path / "in"),
        "mr_a": write_datasets(mr_a, tmp_path / "in"),
        "ct_b": write_datasets(ct_b, tmp_path / "in"),
    }


def _run(paths: list[Path], out: Path, **options: object) -> dict[Path, Path]:
    report = deidentify_files(
        paths, out, key=KEY, parameters=DeidentifyParameters.model_validate(options)
    )
    return {source: out / item.output for source, item in zip(paths, report.objects, strict=True)}


def test_no_identifier_or_date_survives_in_synthetic_series(patients, tmp_path):
    paths = [path for group in patients.values() for path in group]
    results = _run(paths, tmp_path / "out")
    for source, result in results.items():
        _assert_nothing_left(dcmread(source), result)


@pytest.mark.parametrize("name", TEST_FILES)
@pytest.mark.parametrize("modified_dates", [True, False])
def test_no_identifier_date_or_private_tag_survives_in_pydicom_files(
    name, modified_dates, tmp_path
):
    source = Path(get_testdata_file(name))
    result = _run([source], tmp_path, retain_longitudinal_modified_dates=modified_dates)[source]
    original = dcmread(source)
    _assert_nothing_left(original, result)
    deidentified = dcmread(result)
    assert not [elem for elem in deidentified.iterall() if elem.tag.is_private]
    assert deidentified.PatientIdentityRemoved == "YES"
    assert deidentified.LongitudinalTemporalInformationModified == (
        "MODIFIED" if modified_dates else "REMOVED"
    )
    if "PixelData" in original:
        assert deidentified.PixelData == original.PixelData
        assert deidentified.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert deidentified.file_meta.MediaStorageSOPInstanceUID == deidentified.SOPInstanceUID


def test_nested_sequences_are_deidentified(tmp_path):
    source = Path(get_testdata_file("rtplan.dcm"))
    original = dcmread(source)
    result = dcmread(_run([source], tmp_path)[source])
    before = original.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    after = result.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    assert after != before
    assert after == Deidentifier(KEY).remap_uid(before)
    assert result.BeamSequence[0].BeamName == original.BeamSequence[0].BeamName


def test_pixel_data_identical_and_uids_consistent_across_series(patients, tmp_path):
    paths = [*patients["ct_a"], *patients["seg_a"]]
    results = _run(paths, tmp_path / "out")
    ct = [dcmread(results[path]) for path in patients["ct_a"]]
    seg = dcmread(results[patients["seg_a"][0]])
    for path, ds in zip(patients["ct_a"], ct, strict=True):
        original = dcmread(path)
        assert ds.PixelData == original.PixelData
        assert ds.SOPInstanceUID != original.SOPInstanceUID
        assert UID(ds.SOPInstanceUID).is_valid and ds.SOPInstanceUID.startswith("2.25.")
    assert seg.PixelData == dcmread(patients["seg_a"][0]).PixelData
    assert len({ds.SeriesInstanceUID for ds in ct}) == 1
    assert seg.StudyInstanceUID == ct[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
    reference = seg.ReferencedSeriesSequence[0]
    assert reference.SeriesInstanceUID == ct[0].SeriesInstanceUID
    image_uids = {ds.SOPInstanceUID for ds in ct}
    assert {item.ReferencedSOPInstanceUID for item in reference.ReferencedInstanceSequence} == (
        image_uids
    )
    frame_sources = {
        source.ReferencedSOPInstanceUID
        for frame in seg.PerFrameFunctionalGroupsSequence
        for derivation in frame.DerivationImageSequence
        for source in derivation.SourceImageSequence
    }
    assert frame_sources <= image_uids


def test_date_shift_is_consistent_per_patient_and_differs_between_patients(patients, tmp_path):
    firsts = {name: group[0] for name, group in patients.items()}
    results = _run(list(firsts.values()), tmp_path / "out")

    def shift(name: str) -> int:
        before = date.fromisoformat(dcmread(firsts[name]).StudyDate)
        after = date.fromisoformat(dcmread(results[firsts[name]]).StudyDate)
        return (before - after).days

    assert shift("ct_a") == shift("seg_a") == shift("mr_a") > 0
    assert shift("ct_b") > 0
    assert shift("ct_b") != shift("ct_a")
    interval = date(2023, 8, 2) - date(2023, 5, 17)
    mr, ct = (dcmread(results[firsts[name]]) for name in ("mr_a", "ct_a"))
    assert date.fromisoformat(mr.StudyDate) - date.fromisoformat(ct.StudyDate) == interval
    assert mr.StudyTime == dcmread(firsts["mr_a"]).StudyTime
    assert not ct.PatientBirthDate


def test_pseudonyms_are_stable_per_key_and_differ_between_keys(patients, tmp_path):
    path = patients["ct_a"][0]
    first = dcmread(_run([path], tmp_path / "one")[path])
    again = dcmread(_run([path], tmp_path / "two")[path])
    assert first.PatientID == again.PatientID == first.PatientName
    assert first.SOPInstanceUID == again.SOPInstanceUID
    other, _ = Deidentifier(b"another-project-key-0123456789").deidentify(dcmread(path))
    assert other.PatientID != first.PatientID
    assert other.SOPInstanceUID != first.SOPInstanceUID
    assert other.StudyDate != first.StudyDate


def test_retain_uids_keeps_uids(patients, tmp_path):
    path = patients["ct_a"][0]
    result = dcmread(_run([path], tmp_path, retain_uids=True)[path])
    original = dcmread(path)
    assert result.SOPInstanceUID == original.SOPInstanceUID
    assert result.FrameOfReferenceUID == original.FrameOfReferenceUID
    codes = [item.CodeValue for item in result.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113110", "113107", "113105"]


def test_clean_descriptors_keeps_descriptions_without_identifiers(tmp_path):
    series = ct_series(patient_id="PID-4455", patient_name="Holmes^Sherlock", slices=2)
    for ds in series:
        ds.SeriesDescription = "Thorax for HOLMES follow-up"
    source = write_datasets(series[:1], tmp_path / "in")[0]
    cleaned = dcmread(_run([source], tmp_path / "clean")[source])
    assert cleaned.SeriesDescription == "Thorax for  follow-up"
    assert cleaned.StudyDescription == series[0].StudyDescription
    removed = dcmread(_run([source], tmp_path / "basic", clean_descriptors=False)[source])
    assert "SeriesDescription" not in removed
    codes = [item.CodeValue for item in removed.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107"]


def test_safe_private_tags_are_kept_only_when_allow_listed(tmp_path):
    source = Path(get_testdata_file("CT_small.dcm"))
    safe = SafePrivateTag(group=0x0009, private_creator="GEMS_IDEN_01", element_offset=0x04)
    result = dcmread(_run([source], tmp_path, safe_private_tags=[safe.model_dump()])[source])
    private = {elem.tag: elem.value for elem in result if elem.tag.is_private}
    assert private == {0x00090010: "GEMS_IDEN_01", 0x00091004: "HiSpeed CT/i"}
    codes = [item.CodeValue for item in result.DeidentificationMethodCodeSequence]
    assert "113111" in codes


def test_report_names_attributes_but_never_values(patients, tmp_path):
    path = patients["ct_a"][0]
    _run([path], tmp_path)
    text = (tmp_path / "report.json").read_text()
    report = json.loads(text)["objects"][0]
    assert "PatientName (0010,0010)" in report["replaced"]
    assert "PatientBirthDate (0010,0030)" in report["emptied"]
    assert "StudyDate (0008,0020)" in report["shifted"]
    assert "SeriesInstanceUID (0020,000E)" in report["replaced"]
    for value in _originals(dcmread(path)):
        assert value not in text


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="'key' must be at least 16 bytes"):
        Deidentifier(b"short")
    not_dicom = tmp_path / "notes.txt"
    not_dicom.write_text("hello")
    with pytest.raises(InvalidInput, match="is not a readable DICOM file"):
        deidentify_files([not_dicom], tmp_path / "out", key=KEY, parameters=DeidentifyParameters())
    with pytest.raises(ValueError, match="max_date_shift_days"):
        DeidentifyParameters(max_date_shift_days=0)
    with pytest.raises(ValueError, match="odd"):
        SafePrivateTag(group=0x0010, private_creator="X", element_offset=1)
