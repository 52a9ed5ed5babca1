"""Re-encoding stored objects in Explicit VR Little Endian."""

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    MPEG2MPML,
    MPEG4HP41,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from kaapana.archive.transcode import (
    can_transcode,
    decompress_dataset,
    to_explicit_vr_little_endian,
)
from kaapana.errors import InvalidDicom, InvalidInput
from kaapana.testing.synthetic import ct_series


def stored_bytes(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(path).read_bytes()


def parsed(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some reference files are deliberately odd
        return dcmread(io.BytesIO(data))


def pixels(ds: Dataset) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ds.pixel_array


@pytest.mark.parametrize(
    "name",
    [
        "JPEG2000.dcm",
        "US1_J2KR.dcm",
        "JPEGLSNearLossless_16.dcm",
        "JPEG-LL.dcm",
        "SC_rgb_jpeg_lossy_gdcm.dcm",
        "emri_small_RLE.dcm",
        "SC_rgb_rle_2frame.dcm",
    ],
)
def test_compressed_objects_are_decompressed(name: str) -> None:
    data = stored_bytes(name)
    original = parsed(data)
    converted = parsed(to_explicit_vr_little_endian(data))
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert "ExtendedOffsetTable" not in converted
    assert not converted["PixelData"].is_undefined_length
    assert np.array_equal(pixels(converted), pixels(original))
    assert converted.SOPInstanceUID == original.SOPInstanceUID
    assert converted.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert converted.get("PatientName") == original.get("PatientName")


def test_ybr_colour_becomes_rgb() -> None:
    converted = parsed(to_explicit_vr_little_endian(stored_bytes("US1_J2KR.dcm")))
    assert (converted.PhotometricInterpretation, converted.PlanarConfiguration) == ("RGB", 0)


@pytest.mark.parametrize("name", ["rtdose.dcm", "image_dfl.dcm"])
def test_other_little_endian_syntaxes_keep_every_value(name: str) -> None:
    data = stored_bytes(name)
    original = parsed(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rtdose.dcm holds a UID with a leading zero
        converted = parsed(to_explicit_vr_little_endian(data))
        assert converted == original
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(pixels(converted), pixels(original))


@pytest.mark.parametrize(
    ("big_endian", "little_endian"),
    [
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
        ("emri_small_big_endian.dcm", "emri_small.dcm"),
        ("SC_rgb_expb_2frame.dcm", "SC_rgb_2frame.dcm"),
    ],
)
def test_big_endian_becomes_little_endian(big_endian: str, little_endian: str) -> None:
    """The pydicom reference files exist in both byte orders: the conversion must give the
    little endian pixel bytes exactly, not only the same decoded values."""
    converted = parsed(to_explicit_vr_little_endian(stored_bytes(big_endian)))
    expected = parsed(stored_bytes(little_endian))
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert converted.PixelData == expected.PixelData
    assert np.array_equal(pixels(converted), pixels(expected))
    assert converted.SOPInstanceUID == expected.SOPInstanceUID


def test_explicit_vr_little_endian_is_returned_unchanged() -> None:
    data = stored_bytes("CT_small.dcm")
    assert to_explicit_vr_little_endian(data) is data


def test_synthetic_ct_round_trips_through_implicit_vr() -> None:
    ct = ct_series(rows=32, columns=32, slices=2)[0]
    ct.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ct.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=True)
    converted = parsed(to_explicit_vr_little_endian(buffer.getvalue()))
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert converted == ct
    assert converted.PixelData == ct.PixelData


def test_undecodable_pixel_data_is_invalid_dicom() -> None:
    ds = parsed(stored_bytes("JPEG2000.dcm"))
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 64 + b"\xff\xd9"])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InvalidDicom, match="JPEG 2000 Image Compression pixel data cannot"):
            to_explicit_vr_little_endian(buffer.getvalue())
    assert issubclass(InvalidDicom, InvalidInput)


def test_what_is_not_dicom_is_invalid_dicom() -> None:
    with pytest.raises(InvalidDicom, match="not a DICOM Part 10 object"):
        to_explicit_vr_little_endian(b"\x00" * 200)


def test_decompress_dataset_in_place() -> None:
    ds = parsed(stored_bytes("emri_small_jpeg_2k_lossless.dcm"))
    uid, expected = ds.SOPInstanceUID, pixels(ds)
    decompress_dataset(ds)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPInstanceUID == uid
    assert len(ds.PixelData) == expected.nbytes
    assert np.array_equal(pixels(ds), expected)


def test_decompress_dataset_leaves_native_objects_alone() -> None:
    ds = parsed(stored_bytes("emri_small.dcm"))
    before = ds.PixelData
    decompress_dataset(ds)
    assert ds.PixelData is before
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


@pytest.mark.parametrize(
    ("syntax", "expected"),
    [
        (ExplicitVRLittleEndian, True),
        (ImplicitVRLittleEndian, True),
        (ExplicitVRBigEndian, True),
        (DeflatedExplicitVRLittleEndian, True),
        (JPEGBaseline8Bit, True),
        (JPEGLSLossless, True),
        (JPEG2000, True),
        (HTJ2K, True),
        (RLELossless, True),
        (JPEG2000MC, False),
        (MPEG2MPML, False),
        (MPEG4HP41, False),
        ("1.2.3.4", False),
    ],
)
def test_can_transcode(syntax: str, expected: bool) -> None:
    assert can_transcode(syntax) is expected
