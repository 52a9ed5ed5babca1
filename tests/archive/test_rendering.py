"""Rendered frames and thumbnails: what a display shows, as JPEG, PNG or GIF."""

import copy
import io
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.processing import apply_color_lut, apply_voi_lut
from pydicom.uid import ComprehensiveSRStorage, ExplicitVRLittleEndian

from kaapana.archive.frames import read_frames
from kaapana.archive.rendering import RENDERED_MEDIA_TYPES, Viewport, render, thumbnail
from kaapana.errors import InvalidDicom, InvalidInput, NotFound
from kaapana.testing.synthetic import ct_series, phantom_slice


def reference(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some reference files are deliberately odd
        return dcmread(path)


def png(
    ds: Dataset,
    *,
    frame: int = 1,
    window: tuple[float, float] | None = None,
    viewport: Viewport | None = None,
) -> np.ndarray:
    """``render`` as PNG, decoded: lossless, so exact values can be asserted."""
    data = render(ds, frame=frame, window=window, viewport=viewport, media_type="image/png")
    return np.asarray(Image.open(io.BytesIO(data)))


def grayscale(values: np.ndarray, **attributes: object) -> Dataset:
    """A single-frame unsigned 16-bit MONOCHROME2 object holding ``values``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = values.astype("<u2").tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


@pytest.fixture(scope="module")
def ct() -> Dataset:
    return ct_series(rows=64, columns=64, slices=3)[2]  # the slice through the liver


def test_ct_window_maps_air_to_black_and_bone_to_white(ct: Dataset) -> None:
    phantom = phantom_slice(2, rows=64, columns=64, slices=3, seed=0)
    cortical_bone = phantom.hu >= 700
    assert cortical_bone.any()
    image = png(ct, window=(40, 400))
    assert image.shape == (64, 64)
    assert np.all(image[~phantom.masks["body"]] == 0)
    assert np.all(image[cortical_bone] == 255)
    assert 0 < np.median(image[phantom.masks["liver"]]) < 255


def test_the_objects_own_window_is_the_default(ct: Dataset) -> None:
    assert (ct.WindowCenter, ct.WindowWidth) == (40, 400)
    assert np.array_equal(png(ct), png(ct, window=(40, 400)))
    assert not np.array_equal(png(ct), png(ct, window=(-600, 1500)))


def test_monochrome1_is_inverted(ct: Dataset) -> None:
    inverted = copy.deepcopy(ct)
    inverted.PhotometricInterpretation = "MONOCHROME1"
    assert np.array_equal(png(inverted), 255 - png(ct))


def test_linear_window_follows_ps3_3() -> None:
    ds = grayscale(np.array([[0, 49, 51, 100, 149, 151, 400]]))
    # LINEAR, center 100, width 101: 0 up to 49.5, 255 above 149.5, linear in between
    assert png(ds, window=(100, 101)).tolist() == [[0, 0, 4, 129, 254, 255, 255]]


def test_sigmoid_and_linear_exact_from_the_object() -> None:
    values = np.array([[0, 100, 200]])
    sigmoid = grayscale(values, WindowCenter=100, WindowWidth=50, VOILUTFunction="SIGMOID")
    low, middle, high = png(sigmoid)[0]
    assert (middle, low < 1, high > 254) == (128, True, True)
    exact = grayscale(values, WindowCenter=100, WindowWidth=200, VOILUTFunction="LINEAR_EXACT")
    assert png(exact).tolist() == [[0, 128, 255]]


def test_first_of_several_windows_is_used() -> None:
    ds = grayscale(np.array([[0, 50, 100]]), WindowCenter=[50, 500], WindowWidth=[3, 1000])
    assert png(ds).tolist() == [[0, 191, 255]]


def test_without_any_voi_the_frame_range_is_stretched() -> None:
    ds = grayscale(np.array([[1000, 1500, 2000]]))
    assert png(ds).tolist() == [[0, 128, 255]]
    flat = grayscale(np.array([[7, 7]]))
    assert png(flat).tolist() == [[0, 0]]


def test_rescale_is_applied_before_the_window() -> None:
    ds = grayscale(np.array([[0, 1024, 2048]]), RescaleSlope=1, RescaleIntercept=-1024)
    assert png(ds, window=(0, 2049)).tolist() == [[0, 128, 255]]


def test_voi_lut_sequence() -> None:
    ds = reference("vlut_04.dcm")
    depth = ds.VOILUTSequence[0].LUTDescriptor[2]
    expected = np.rint(apply_voi_lut(ds.pixel_array, ds) / (2**depth - 1) * 255)
    assert np.array_equal(png(ds), expected)


def test_enhanced_ct_uses_the_functional_groups() -> None:
    ds = reference("eCT_Supplemental.dcm")
    shared = ds.SharedFunctionalGroupsSequence[0]
    voi = shared.FrameVOILUTSequence[0]
    assert "RescaleIntercept" not in ds and "WindowCenter" not in ds
    hu = ds.pixel_array[1] * 1.0 + float(
        shared.PixelValueTransformationSequence[0].RescaleIntercept
    )
    center, width = float(voi.WindowCenter), float(voi.WindowWidth)
    expected = np.rint(np.clip((hu - (center - 0.5)) / (width - 1) + 0.5, 0, 1) * 255)
    assert np.array_equal(png(ds, frame=2), expected)


def test_double_float_pixel_data() -> None:
    values = np.array([[[-1.5, 0.0, 1.5]], [[2.0, 3.0, 4.0]]])
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.NumberOfFrames = 1, 3, 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME2", 64
    ds.DoubleFloatPixelData = values.tobytes()
    assert png(ds).tolist() == [[0, 128, 255]]
    assert png(ds, frame=2, window=(3, 3)).tolist() == [[64, 191, 255]]


def test_multi_frame_renders_the_chosen_frame() -> None:
    ds = reference("emri_small.dcm")
    frame = ds.pixel_array[6].astype(np.float64)
    expected = np.rint((frame - frame.min()) / (frame.max() - frame.min()) * 255)
    assert np.array_equal(png(ds, frame=7), expected)


def test_only_the_requested_frame_is_decoded() -> None:
    """Frame 5 is garbage: frame 1 still renders, so frame 5 was never decoded for it."""
    ds = reference("emri_small_jpeg_2k_lossless.dcm")
    stored = [frame.data for frame in read_frames(ds, range(1, 11))]
    stored[4] = b"\xff\x4f\xff\x51" + b"\x00" * 64 + b"\xff\xd9"
    ds.PixelData = encapsulate(stored)
    assert png(ds, frame=1).shape == (64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InvalidDicom, match="frame 5"):
            render(ds, frame=5)


@pytest.mark.parametrize(("frame", "error"), [(11, NotFound), (0, InvalidInput)])
def test_frame_out_of_range(frame: int, error: type[Exception]) -> None:
    with pytest.raises(error, match=str(frame)):
        render(reference("emri_small.dcm"), frame=frame)


def test_one_bit_segmentation_is_black_and_white() -> None:
    ds = reference("liver.dcm")
    assert np.array_equal(png(ds, frame=2), ds.pixel_array[1] * 255)


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        ("SC_rgb.dcm", 1),
        ("SC_rgb_2frame.dcm", 2),
        ("SC_rgb_rle_2frame.dcm", 2),
        ("US1_J2KR.dcm", 1),
    ],
)
def test_rgb_is_rendered_as_is(name: str, frame: int) -> None:
    ds = reference(name)
    pixels = ds.pixel_array if "NumberOfFrames" not in ds else ds.pixel_array[frame - 1]
    assert np.array_equal(png(ds, frame=frame), pixels)


@pytest.mark.parametrize(
    "name", ["SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm"]
)
def test_ybr_full_is_converted_to_rgb(name: str) -> None:
    """The same picture as SC_rgb.dcm, stored as YCbCr: it renders as (nearly) that RGB."""
    ds = reference(name)
    assert ds.PhotometricInterpretation.startswith("YBR_FULL")
    converted = png(ds)
    assert np.array_equal(converted, ds.pixel_array)  # pydicom's YBR to RGB conversion
    rgb = png(reference("SC_rgb.dcm"))
    assert np.abs(converted.astype(int) - rgb).mean() < 1


def test_rgb_of_more_than_8_bits_is_scaled() -> None:
    assert np.array_equal(
        png(reference("SC_rgb_32bit_2frame.dcm"), frame=2),
        png(reference("SC_rgb_2frame.dcm"), frame=2),
    )


def test_palette_color() -> None:
    ds = reference("examples_palette.dcm")
    rgb = apply_color_lut(ds.pixel_array, ds)
    bits = rgb.dtype.itemsize * 8
    expected = np.rint(rgb * (255 / (2**bits - 1)))
    image = png(ds)
    assert image.shape == (ds.Rows, ds.Columns, 3)
    assert np.array_equal(image, expected)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 16


def test_viewport_keeps_the_aspect_ratio() -> None:
    ds = reference("JPEG2000.dcm")  # 1024 rows, 256 columns
    assert png(ds, viewport=Viewport(100, 100)).shape == (100, 25)
    assert png(ds, viewport=Viewport(512, 4096)).shape == (2048, 512)


def test_viewport_source_region_is_cut_before_scaling() -> None:
    ds = reference("SC_rgb.dcm")
    pixels = ds.pixel_array
    region = png(ds, viewport=Viewport(20, 10, sx=10, sy=30, sw=20, sh=10))
    assert np.array_equal(region, pixels[30:40, 10:30])
    assert png(ds, viewport=Viewport(10, 10, sx=10, sy=30, sw=20, sh=10)).shape == (5, 10, 3)
    assert np.array_equal(png(ds, viewport=Viewport(100, 100, sx=50)), pixels[:, 50:])


def test_negative_region_size_flips() -> None:
    ds = reference("SC_rgb.dcm")
    flipped = png(ds, viewport=Viewport(100, 100, sx=100, sy=100, sw=-100, sh=-100))
    assert np.array_equal(flipped, ds.pixel_array[::-1, ::-1])


@pytest.mark.parametrize(
    ("viewport", "message"),
    [
        (lambda: Viewport(0, 10), "'vw' must be a positive size, got 0"),
        (lambda: Viewport(10, -1), "'vh' must be a positive size, got -1"),
        (lambda: Viewport(10, 10, sw=0), "'sw' must not be 0"),
    ],
)
def test_invalid_viewports_are_refused(viewport: Callable[[], Viewport], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        viewport()


def test_region_outside_the_image_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not inside the 100x100 image"):
        render(reference("SC_rgb.dcm"), viewport=Viewport(10, 10, sx=90, sw=20))


@pytest.mark.parametrize(
    ("media_type", "signature"),
    [("image/jpeg", b"\xff\xd8\xff"), ("image/png", b"\x89PNG"), ("image/gif", b"GIF8")],
)
def test_media_types(ct: Dataset, media_type: str, signature: bytes) -> None:
    assert media_type in RENDERED_MEDIA_TYPES
    for ds in (ct, reference("SC_rgb.dcm")):
        data = render(ds, media_type=media_type)
        assert data.startswith(signature)
        assert Image.open(io.BytesIO(data)).size == (ds.Columns, ds.Rows)


def test_unsupported_media_type_lists_the_supported_ones(ct: Dataset) -> None:
    with pytest.raises(InvalidInput, match="image/gif, image/jpeg, image/png, got 'image/tiff'"):
        render(ct, media_type="image/tiff")


def test_jpeg_quality(ct: Dataset) -> None:
    assert len(render(ct, quality=10)) < len(render(ct, quality=95))
    with pytest.raises(InvalidInput, match="'quality' must be 1-100, got 0"):
        render(ct, quality=0)


def test_window_width_below_one_is_refused(ct: Dataset) -> None:
    with pytest.raises(InvalidInput, match=r"width must be at least 1, got 0\.5"):
        render(ct, window=(40, 0.5))


def test_object_without_pixel_data_cannot_be_rendered() -> None:
    sr = Dataset()
    sr.SOPClassUID = ComprehensiveSRStorage
    with pytest.raises(NotFound, match="no pixel data"):
        render(sr)
    with pytest.raises(NotFound, match="no pixel data"):
        thumbnail(sr)


def test_thumbnail_is_the_middle_frame_fitted() -> None:
    ds = reference("emri_small.dcm")  # 10 frames of 64x64
    data = thumbnail(ds, size=32, media_type="image/png")
    assert data == render(ds, frame=5, viewport=Viewport(32, 32), media_type="image/png")
    assert Image.open(io.BytesIO(data)).size == (32, 32)
    tall = Image.open(io.BytesIO(thumbnail(reference("JPEG2000.dcm"))))
    assert (tall.format, tall.size) == ("JPEG", (32, 128))


def test_thumbnail_size_must_be_positive(ct: Dataset) -> None:
    with pytest.raises(InvalidInput, match="'size' must be a positive number of pixels, got 0"):
        thumbnail(ct, size=0)
