"""The fast DICOM JSON encoder gives exactly pydicom's ``to_json_dict``, element for element."""

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from kaapana.archive.dicomjson import dataset_json
from kaapana.archive.metadata import describe, ensure_part10, inspect
from kaapana.errors import InvalidDicom
from kaapana.testing.synthetic import ct_segmentation, ct_series, mr_series
from tests.helpers import part10

PREFIX = "studies/1/series/2/instances/3"
THRESHOLD = 1024

TEST_FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",
    "ExplVR_BigEnd.dcm",
    "JPEG2000.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "UN_sequence.dcm",
    "badVR.dcm",
    "empty_charset_LEI.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "nested_priv_SQ.dcm",
    "no_meta.dcm",
    "priv_SQ.dcm",
    "reportsi.dcm",
    "reportsi_with_empty_number_tags.dcm",
    "rtdose.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
]
CHARSET_FILES = [
    "chrArab.dcm",
    "chrFren.dcm",
    "chrFrenMulti.dcm",
    "chrGerm.dcm",
    "chrGreek.dcm",
    "chrH31.dcm",
    "chrH32.dcm",
    "chrHbrw.dcm",
    "chrI2.dcm",
    "chrJapMulti.dcm",
    "chrJapMultiExplicitIR6.dcm",
    "chrKoreanMulti.dcm",
    "chrRuss.dcm",
    "chrSQEncoding.dcm",
    "chrSQEncoding1.dcm",
    "chrX1.dcm",
    "chrX2.dcm",
]


def pydicom_json(ds: Dataset, prefix: str = PREFIX) -> tuple[dict[str, Any], list[int]]:
    """pydicom's own encoding, element by element; elements it cannot encode are left out."""

    def bulk_data_uri(element: DataElement) -> str:
        return f"{prefix}/bulkdata/{element.tag:08X}"

    result: dict[str, Any] = {}
    failed = []
    for tag in list(ds.keys()):
        try:
            result[f"{tag:08X}"] = ds[tag].to_json_dict(bulk_data_uri, THRESHOLD)
        except Exception:
            failed.append(int(tag))
    return result, failed


def fast_json(ds: Dataset) -> tuple[dict[str, Any], list[int]]:
    failed: list[int] = []
    result = dataset_json(ds, PREFIX, THRESHOLD, lambda tag, _exc: failed.append(tag))
    return result, failed


def assert_same_json(read: Callable[[], Dataset]) -> None:
    """Both encoders on fresh parses of the same bytes: identical JSON text, same left-outs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pydicom_json(read())
        actual = fast_json(read())
    assert json.dumps(actual[0]) == json.dumps(expected[0])
    assert actual[1] == expected[1]


def _from_bytes(data: bytes) -> Callable[[], Dataset]:
    return lambda: pydicom.dcmread(io.BytesIO(data), force=True)


@pytest.mark.parametrize("name", TEST_FILES)
def test_pydicom_test_files(name: str) -> None:
    path = get_testdata_file(name)
    assert path is not None
    assert_same_json(lambda: pydicom.dcmread(path, force=True))


# Test files ingest refuses (framing the index cannot take); their JSON is compared above.
REFUSED_AT_INGEST = frozenset(
    {"UN_sequence.dcm", "empty_charset_LEI.dcm", "nested_priv_SQ.dcm", "no_meta.dcm", "priv_SQ.dcm"}
)


@pytest.mark.parametrize("name", sorted(REFUSED_AT_INGEST & set(TEST_FILES)))
def test_files_ingest_refuses(name: str) -> None:
    with pytest.raises(InvalidDicom):
        inspect(ensure_part10(Path(get_testdata_file(name)).read_bytes()))


@pytest.mark.parametrize("name", [name for name in TEST_FILES if name not in REFUSED_AT_INGEST])
def test_metadata_of_a_stored_object_is_pydicoms_json(name: str) -> None:
    """What ingest stores: parsed with bulk data left in place (deferred), then encoded."""
    received = inspect(ensure_part10(Path(get_testdata_file(name)).read_bytes()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = describe(received)
        prefix = (
            f"studies/{received.study_instance_uid}/series/{received.series_instance_uid}"
            f"/instances/{received.sop_instance_uid}"
        )
        expected, _ = pydicom_json(pydicom.dcmread(io.BytesIO(received.data)), prefix)
    assert json.dumps(record.instance_json) == json.dumps(expected)


@pytest.mark.parametrize("name", CHARSET_FILES)
def test_character_sets(name: str) -> None:
    [path] = get_charset_files(name)
    assert_same_json(lambda: pydicom.dcmread(path, force=True))


def test_synthetic_ct_mr_and_seg() -> None:
    ct = ct_series(rows=16, columns=16, slices=3)
    for ds in [*ct, *mr_series(rows=16, columns=16, slices=2), ct_segmentation(ct)]:
        assert_same_json(_from_bytes(part10(ds)))


# Values as real-world senders write them: padding, odd separators, empty components,
# numbers that are not quite numbers, names with ideographic parts, binary of every size.
ODD_VALUES: list[tuple[str, str, Any]] = [
    ("PatientName", "PN", "Doe^John"),
    ("PatientName", "PN", "Doe^John=Ideo^Graphic=Pho^Netic"),
    ("PatientName", "PN", "Doe^John=="),
    ("PatientName", "PN", ["Doe^John", "", "Roe^Jane"]),
    ("PatientName", "PN", "  "),
    ("PatientName", "PN", "Müller^Jürgen"),
    ("ReferringPhysicianName", "PN", ["A^B", "C^D"]),
    ("PatientID", "LO", " 12 34 \x00"),
    ("PatientID", "LO", ""),
    ("OtherPatientIDs", "LO", ["A ", " B", ""]),
    ("StudyDescription", "LO", "back\\slash"),
    ("ImageComments", "LT", "line one\r\nline two\\with backslash  "),
    ("ImageType", "CS", ["ORIGINAL", "PRIMARY", "AXIAL"]),
    ("ImageType", "CS", ["ORIGINAL ", "", "AXIAL"]),
    ("Modality", "CS", "  "),
    ("Modality", "CS", " CT"),
    ("StudyDate", "DA", " 20240115"),
    ("SOPInstanceUID", "UI", " 1.2.3"),
    ("InstanceNumber", "IS", "x"),
    ("InstanceNumber", "IS", " 12 "),
    ("InstanceNumber", "IS", "+0012"),
    ("InstanceNumber", "IS", "1.0"),
    ("InstanceNumber", "IS", "1_0"),
    ("ReferencedFrameNumber", "IS", ["1", "", "3"]),
    ("SliceThickness", "DS", "2.50 "),
    ("SliceThickness", "DS", "1e3"),
    ("SliceThickness", "DS", ".5"),
    ("SliceThickness", "DS", "5."),
    ("SliceThickness", "DS", "nan"),
    ("SliceThickness", "DS", "-inf"),
    ("SliceThickness", "DS", "1,5"),
    ("SliceThickness", "DS", "1_5"),
    ("PixelSpacing", "DS", ["0.5", " 0.25"]),
    ("PixelSpacing", "DS", ["0.5", ""]),
    ("ImagePositionPatient", "DS", ["-1.5E+02", "+3", "0"]),
    ("SOPClassUID", "UI", "1.2.840.10008.5.1.4.1.1.2\x00"),
    ("ReferencedSOPClassUIDInFile", "UI", "1.2.3 "),
    ("RetrieveAETitle", "AE", [" KAAPANA ", "OTHER"]),
    ("StationAETitle", "AE", " "),
    ("PatientAge", "AS", "045Y"),
    ("StudyDate", "DA", "20240115 "),
    ("StudyTime", "TM", "101010.123456"),
    ("AcquisitionDateTime", "DT", "20240115101010.5+0100"),
    ("RetrieveURL", "UR", "http://example.org/a b  "),
    ("RetrieveURL", "UR", "http://example.org/a\\b"),
    ("Rows", "US", 512),
    ("SmallestImagePixelValue", "SS", -5),
    ("SimpleFrameList", "UL", [1, 2, 3]),
    ("ReferencePixelX0", "SL", -3),
    ("RescaleSlope", "DS", "1"),
    ("FrameTimeVector", "DS", ["1.5"] * 3),
    ("TableOfParameterValues", "FD", [1.5, -2.25e300]),
    ("RecommendedDisplayFrameRateInFloat", "FL", 0.1),
    ("SelectorSVValue", "SV", [-(2**62), 5]),
    ("SelectorUVValue", "UV", [2**63 + 5]),
    ("FrameIncrementPointer", "AT", [0x00181063, 0x00181065]),
    ("LUTDescriptor", "US", [0, 0, 16]),
    ("RedPaletteColorLookupTableDescriptor", "US", [256, 0, 16]),
    ("RedPaletteColorLookupTableData", "OW", b"\x01\x02" * 100),
    ("RedPaletteColorLookupTableData", "OW", b"\x01\x02" * 500),
    ("EncapsulatedDocument", "OB", b"%PDF" * 192),
    ("EncapsulatedDocument", "OB", b"%PDF" * 193),
    ("FloatPixelData", "OF", b"\x00\x00\x80\x3f" * 4),
    ("DoubleFloatPixelData", "OD", b""),
    ("PixelDataProviderURL", "UR", ""),
    ("TextValue", "UT", "long text\\ with backslash\x00"),
    ("StrainAdditionalInformation", "UC", ["a", "b "]),
    ("InstitutionName", "LO", "Klinik Ärzte"),
]


_SYNTAXES = {
    ExplicitVRLittleEndian: (False, True),
    ImplicitVRLittleEndian: (True, True),
    ExplicitVRBigEndian: (False, False),
}


def _odd_dataset(
    keyword: str,
    vr: str,
    value: Any,
    transfer_syntax: str = ExplicitVRLittleEndian,
    charset: str | None = None,
) -> Dataset:
    """A data set holding one odd value; text goes in as raw bytes, unchecked by pydicom."""
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = "\\".join(value)
    if isinstance(value, str):
        raw = value.encode("latin-1" if charset else "utf-8")
        raw += b"\x00" if vr == "UI" and len(raw) % 2 else b" " * (len(raw) % 2)
        implicit, little = _SYNTAXES[transfer_syntax]
        ds._dict[Tag(tag)] = RawDataElement(
            Tag(tag), vr, len(raw), raw, 0, implicit, little, True, False
        )
    else:
        ds.add(DataElement(tag, vr, value))
    return ds


def _encoded(ds: Dataset, transfer_syntax: str) -> bytes:
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return part10(ds)


@pytest.mark.parametrize(
    "transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
)
@pytest.mark.parametrize(("keyword", "vr", "value"), ODD_VALUES)
def test_odd_values(keyword: str, vr: str, value: Any, transfer_syntax: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _encoded(_odd_dataset(keyword, vr, value, transfer_syntax), transfer_syntax)
    assert_same_json(_from_bytes(data))


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87", "GB18030"])
def test_text_in_other_character_sets(charset: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _odd_dataset("InstitutionName", "LO", "Klinik Ärzte", charset=charset)
        ds.PatientName = "Doe^John"
        ds.StudyDescription = "plain ascii"
        data = _encoded(ds, ExplicitVRLittleEndian)
    assert_same_json(_from_bytes(data))


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_sequences_nested_with_a_bad_value_inside(transfer_syntax: str) -> None:
    """A value that does not convert inside a sequence costs the whole top-level element."""
    inner = _odd_dataset("InstanceNumber", "IS", "x", transfer_syntax)
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.ReferencedFrameNumber = ["1", "2"]
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    good = Dataset()
    good.CodeValue = "121311"
    good.CodeMeaning = "Localizer"
    ds = _odd_dataset("PatientName", "PN", "Doe^John", transfer_syntax)
    ds.ReferencedImageSequence = Sequence([item])
    ds.AnatomicRegionSequence = Sequence([good, Dataset()])
    ds.DerivationCodeSequence = Sequence([])
    data = _encoded(ds, transfer_syntax)
    assert_same_json(_from_bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, left_out = fast_json(_from_bytes(data)())
    assert left_out == [0x00081140]
    assert result["00082218"]["Value"][1] == {}
    assert result["00089215"] == {"vr": "SQ", "Value": []}


def test_private_elements_in_implicit_vr() -> None:
    ds = _odd_dataset("PatientName", "PN", "Doe^John")
    ds.add_new(0x00090010, "LO", "ACME 1.0")
    ds.add_new(0x00091001, "LO", "private text")
    ds.add_new(0x00091002, "US", 7)
    ds.add_new(0x00110010, "LO", "UNKNOWN CREATOR")
    ds.add_new(0x00111001, "OB", b"\x00\x01" * 10)
    ds.add_new(0x00080000, "UL", 100)  # group length
    for transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        assert_same_json(_from_bytes(_encoded(ds, transfer_syntax)))


def test_bulk_data_uri_names_the_element() -> None:
    [ds] = ct_series(rows=32, columns=32, slices=1)
    result, _ = fast_json(pydicom.dcmread(io.BytesIO(part10(ds))))
    assert result["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{PREFIX}/bulkdata/7FE00010"}


COLUMN_VALUES: list[tuple[str, str, Any]] = [
    ("PatientID", "LO", " 12 34 \x00"),
    ("PatientID", "LO", "A\x00B"),
    ("PatientID", "LO", ["A", "B"]),
    ("PatientID", "LO", "Müller"),
    ("PatientName", "PN", "Doe^John=Ideo^Graphic"),
    ("PatientName", "PN", ["Doe^John", "Roe^Jane"]),
    ("PatientName", "PN", "  "),
    ("PatientSex", "CS", " M"),
    ("StudyDate", "DA", "20240115 "),
    ("StudyTime", "TM", "101010.5\x00"),
    ("Modality", "CS", ["CT", "PT"]),
    ("SeriesNumber", "IS", " 7 "),
    ("SeriesNumber", "IS", "+0012"),
    ("SeriesNumber", "IS", "1.0"),
    ("SeriesNumber", "IS", "x"),
    ("SeriesNumber", "IS", ["1", "2"]),
    ("SeriesNumber", "IS", ""),
    ("InstanceNumber", "IS", "3\x00"),
    ("NumberOfFrames", "IS", "12"),
]


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize(("keyword", "vr", "value"), COLUMN_VALUES)
def test_index_columns_read_from_raw_bytes_match_pydicoms_values(
    keyword: str, vr: str, value: Any, transfer_syntax: str
) -> None:
    """Index columns come from the raw bytes where that cannot differ from pydicom's values."""
    ds = _odd_dataset(keyword, vr, value, transfer_syntax)
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.1"
    data = _encoded(ds, transfer_syntax)
    raw = inspect(data)
    converted = inspect(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag in list(converted.dataset.keys()):
            converted.dataset[tag]  # every element through pydicom's conversion
        assert describe(raw) == describe(converted)
