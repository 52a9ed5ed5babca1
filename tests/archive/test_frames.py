"""Frames as WADO-RS ``frames/{list}`` returns them: stored bytes, one frame at a time."""

import copy
import warnings

import numpy as np
import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    ComprehensiveSRStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSNearLossless,
    RLELossless,
)

from kaapana.archive.frames import (
    Frame,
    decode_frame,
    decompress_frames,
    frame_count,
    frame_index,
    frame_media_type,
    read_frames,
)
from kaapana.errors import InvalidDicom, InvalidInput, NotFound
from kaapana.testing.synthetic import ct_segmentation, ct_series


def reference(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some reference files are deliberately odd
        return dcmread(path)


def frames_of(ds: Dataset) -> np.ndarray:
    """All frames as an array with a leading frame axis, decoded by pydicom."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels = ds.pixel_array
    return pixels if frame_count(ds) > 1 else pixels[np.newaxis]


def single_frame_copy(ds: Dataset, data: bytes) -> Dataset:
    """``ds`` holding only the encapsulated frame ``data``: decodable only if ``data`` is a
    complete, self-contained frame."""
    single = copy.deepcopy(ds)
    single.NumberOfFrames = 1
    single.PixelData = encapsulate([data])
    return single


@pytest.mark.parametrize(
    ("syntax", "media_type"),
    [
        (JPEGBaseline8Bit, "image/jpeg"),
        (JPEGLosslessSV1, "image/jpeg"),
        (JPEGLSNearLossless, "image/jls"),
        (JPEG2000Lossless, "image/jp2"),
        (JPEG2000, "image/jp2"),
        (HTJ2K, "image/jphc"),
        (RLELossless, "image/dicom-rle"),
        (ExplicitVRLittleEndian, "application/octet-stream"),
        (ImplicitVRLittleEndian, "application/octet-stream"),
        (DeflatedExplicitVRLittleEndian, "application/octet-stream"),
        ("1.2.3.4", "application/octet-stream"),
    ],
)
def test_frame_media_type_follows_ps3_18(syntax: str, media_type: str) -> None:
    assert frame_media_type(syntax) == media_type


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "emri_small.dcm",
        "SC_rgb_2frame.dcm",
        "SC_rgb_32bit_2frame.dcm",
        "rtdose.dcm",
    ],
)
def test_native_frames_are_the_stored_bytes_of_that_frame(name: str) -> None:
    ds = reference(name)
    expected = frames_of(ds)
    numbers = list(range(frame_count(ds), 0, -1))
    frames = read_frames(ds, numbers)
    assert [frame.data for frame in frames] == [expected[n - 1].tobytes() for n in numbers]
    assert {(f.media_type, f.transfer_syntax_uid) for f in frames} == {
        ("application/octet-stream", ExplicitVRLittleEndian)
    }


def test_synthetic_ct_frame_and_repeated_numbers() -> None:
    ct = ct_series(rows=32, columns=32, slices=2)[0]
    assert frame_count(ct) == 1
    frames = read_frames(ct, [1, 1])
    assert (
        frames[0]
        == frames[1]
        == Frame(ct.pixel_array.tobytes(), "application/octet-stream", ExplicitVRLittleEndian)
    )


def test_planar_configuration_1_frame_keeps_its_colour_planes() -> None:
    ds = reference("SC_rgb_2frame.dcm")
    rgb = frames_of(ds)
    ds.PixelData = b"".join(frame.transpose(2, 0, 1).tobytes() for frame in rgb)
    ds.PlanarConfiguration = 1
    (second,) = read_frames(ds, [2])
    planes = np.frombuffer(second.data, np.uint8).reshape(3, ds.Rows, ds.Columns)
    assert np.array_equal(planes.transpose(1, 2, 0), rgb[1])
    assert np.array_equal(frames_of(ds)[1], rgb[1])


def test_one_bit_frames_on_byte_boundaries() -> None:
    ds = reference("liver.dcm")
    masks = frames_of(ds)
    for number, frame in enumerate(read_frames(ds, [1, 2, 3]), start=1):
        assert frame.data == pack_bits(masks[number - 1], pad=False)


def test_one_bit_frames_that_start_inside_a_byte() -> None:
    """A 30x30 SEG frame is 900 bits: every other frame starts in the middle of a byte."""
    ct = ct_series(rows=30, columns=30, slices=4)
    seg = ct_segmentation(ct)
    masks = frames_of(seg)
    numbers = list(range(1, frame_count(seg) + 1))
    frames = read_frames(seg, numbers)
    assert len(frames) == len(masks) > 2
    for frame, mask in zip(frames, masks, strict=True):
        assert len(frame.data) == 113  # ceil(900 / 8)
        assert frame.data == pack_bits(mask, pad=False)


def test_float_pixel_data_frames() -> None:
    values = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 7
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.NumberOfFrames = 3, 4, 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.tobytes()
    assert read_frames(ds, [2])[0].data == values[1].tobytes()


@pytest.mark.parametrize(
    ("big_endian", "little_endian"),
    [
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
        ("emri_small_big_endian.dcm", "emri_small.dcm"),
        ("SC_rgb_expb_2frame.dcm", "SC_rgb_2frame.dcm"),
    ],
)
def test_big_endian_frames_are_returned_little_endian(big_endian: str, little_endian: str) -> None:
    stored, expected = reference(big_endian), reference(little_endian)
    last = frame_count(stored)
    assert read_frames(stored, [last]) == read_frames(expected, [last])


@pytest.mark.parametrize(
    ("name", "media_type", "magic"),
    [
        ("JPEG2000.dcm", "image/jp2", b"\xff\x4f\xff\x51"),
        ("US1_J2KR.dcm", "image/jp2", b"\xff\x4f\xff\x51"),
        ("emri_small_jpeg_2k_lossless.dcm", "image/jp2", b"\xff\x4f\xff\x51"),
        ("JPEGLSNearLossless_16.dcm", "image/jls", b"\xff\xd8"),
        ("JPEG-LL.dcm", "image/jpeg", b"\xff\xd8"),
        ("SC_rgb_jpeg_gdcm.dcm", "image/jpeg", b"\xff\xd8"),
        ("MR_small_RLE.dcm", "image/dicom-rle", b""),
        ("emri_small_RLE.dcm", "image/dicom-rle", b""),
        ("SC_rgb_rle_2frame.dcm", "image/dicom-rle", b""),
    ],
)
def test_compressed_frames_are_complete_bitstreams(
    name: str, media_type: str, magic: bytes
) -> None:
    ds = reference(name)
    expected = frames_of(ds)
    last = frame_count(ds)
    frames = read_frames(ds, [last, 1])
    for frame, number in zip(frames, [last, 1], strict=True):
        assert frame.media_type == media_type
        assert frame.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
        assert frame.data.startswith(magic)
        assert np.array_equal(frames_of(single_frame_copy(ds, frame.data))[0], expected[number - 1])


def test_one_frame_of_a_large_jpeg_multiframe_is_read_without_decoding() -> None:
    ds = reference("color3d_jpeg_baseline.dcm")
    (frame,) = read_frames(ds, [60])
    assert frame.media_type == "image/jpeg"
    assert frame.data.startswith(b"\xff\xd8")
    decoded = frames_of(single_frame_copy(ds, frame.data))[0]
    assert np.array_equal(decoded, decode_frame(ds, 60))


def test_extended_offset_table_is_used() -> None:
    ds = reference("emri_small_RLE.dcm")
    stored = list(generate_frames(ds.PixelData, number_of_frames=10))
    ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(
        stored
    )
    assert [frame.data for frame in read_frames(ds, [10, 3])] == [stored[9], stored[2]]


def test_single_frame_split_into_many_fragments() -> None:
    ds = reference("JPEG2000.dcm")
    whole = read_frames(ds, [1])[0].data
    ds.PixelData = encapsulate([whole], fragments_per_frame=5)
    assert read_frames(ds, [1])[0].data == whole


def test_many_fragments_per_frame_without_offset_table() -> None:
    ds = reference("emri_small_jpeg_2k_lossless.dcm")
    stored = [frame.data for frame in read_frames(ds, range(1, 11))]
    ds.PixelData = encapsulate(stored, fragments_per_frame=3, has_bot=False)
    assert read_frames(ds, [7])[0].data == stored[6]


def test_missing_encapsulated_frames_are_reported() -> None:
    ds = reference("emri_small_jpeg_2k_lossless.dcm")
    stored = [frame.data for frame in read_frames(ds, [1, 2])]
    ds.PixelData = encapsulate(stored)
    with pytest.raises(InvalidDicom, match="frame 4"):
        read_frames(ds, [4])


@pytest.mark.parametrize(
    ("numbers", "error", "message"),
    [
        ([0], InvalidInput, "start at 1, got 0"),
        ([2, -1], InvalidInput, "start at 1, got -1"),
        ([11], NotFound, "frame 11 does not exist: the object has 10 frame"),
        ([], InvalidInput, "at least one frame"),
    ],
)
def test_frame_numbers_are_checked(
    numbers: list[int], error: type[Exception], message: str
) -> None:
    ds = reference("emri_small.dcm")
    with pytest.raises(error, match=message):
        read_frames(ds, numbers)
    with pytest.raises(error, match=message):
        decompress_frames(ds, numbers)


def test_an_object_without_pixel_data_has_no_frames() -> None:
    sr = Dataset()
    sr.SOPClassUID = ComprehensiveSRStorage
    assert frame_count(sr) == 0
    with pytest.raises(NotFound, match="Comprehensive SR Storage has no pixel data"):
        read_frames(sr, [1])
    with pytest.raises(NotFound, match="no pixel data"):
        frame_index(sr, 1)


@pytest.mark.parametrize(
    "name",
    [
        "JPEG2000.dcm",
        "emri_small_RLE.dcm",
        "JPEGLSNearLossless_16.dcm",
        "SC_rgb_jpeg_lossy_gdcm.dcm",
    ],
)
def test_decompressed_frames_are_native_pixels(name: str) -> None:
    ds = reference(name)
    expected = frames_of(ds)  # YBR is decoded to RGB, as decompress_frames promises
    last = frame_count(ds)
    frames = decompress_frames(ds, [last, 1])
    assert [frame.data for frame in frames] == [expected[last - 1].tobytes(), expected[0].tobytes()]
    assert {(f.media_type, f.transfer_syntax_uid) for f in frames} == {
        ("application/octet-stream", ExplicitVRLittleEndian)
    }


def test_decompressing_native_frames_returns_them_as_stored() -> None:
    ds = reference("emri_small.dcm")
    assert decompress_frames(ds, [4, 2]) == read_frames(ds, [4, 2])


def test_undecodable_frames_are_invalid_dicom() -> None:
    ds = reference("emri_small_jpeg_2k_lossless.dcm")
    stored = [frame.data for frame in read_frames(ds, range(1, 11))]
    stored[4] = b"\xff\x4f\xff\x51" + b"\x00" * 64 + b"\xff\xd9"
    ds.PixelData = encapsulate(stored)
    assert (
        decompress_frames(ds, [4])[0].data
        == frames_of(reference("emri_small_jpeg_2k_lossless.dcm"))[3].tobytes()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InvalidDicom, match="frame 5 of the JPEG 2000"):
            decompress_frames(ds, [5])
