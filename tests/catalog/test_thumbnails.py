"""Series thumbnails: slice, window, SEG overlay, icons; served by REST and DICOMweb."""

import io
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFilter
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file

from kaapana.archive.rendering import Viewport, render
from kaapana.catalog import thumbnail_key
from kaapana.catalog.thumbnails import CT_SOFT_TISSUE, SEGMENT_PALETTE, document_icon
from kaapana.platform import Platform
from kaapana.testing import ct_segmentation, ct_series
from kaapana.testing.synthetic import phantom_slice
from tests.api.conftest import Site
from tests.catalog.helpers import arrive, pdf_in_study_of, sr_referencing, store

Pixels = npt.NDArray[np.float64]


def _pixels(png: bytes) -> Pixels:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def _stored(platform: Platform, series_instance_uid: str) -> bytes:
    return platform.results.get(thumbnail_key(series_instance_uid))


def _difference(a: Pixels, b: Pixels) -> float:
    return float(np.abs(a - b).mean())


def test_the_middle_slice_by_position_with_shuffled_numbers_and_ct_soft_tissue(
    platform: Platform,
) -> None:
    ct = ct_series(rows=48, columns=64, slices=5, seed=4)
    by_position = sorted(ct, key=lambda ds: float(ds.ImagePositionPatient[2]))
    for ds, number in zip(ct, (4, 1, 5, 3, 2), strict=True):
        ds.InstanceNumber = number  # the file order and the numbers say nothing of position
        del ds.WindowCenter, ds.WindowWidth  # a CT without a window of its own
    store(platform, reversed(ct))
    arrive(platform)

    thumb = _pixels(_stored(platform, ct[0].SeriesInstanceUID))
    assert thumb.shape == (192, 256, 3)  # 256 pixels on the long side, proportions kept
    rendered = [
        _pixels(
            render(ds, window=CT_SOFT_TISSUE, viewport=Viewport(256, 256), media_type="image/png")
        )
        for ds in by_position
    ]
    assert _difference(thumb, rendered[2]) < 0.5
    for other in (0, 1, 3, 4):
        assert _difference(thumb, rendered[other]) > 5 * _difference(thumb, rendered[2]) + 1


def test_an_object_with_its_own_window_keeps_it(platform: Platform) -> None:
    ct = ct_series(rows=32, columns=32, slices=3, seed=5)
    for ds in ct:
        ds.WindowCenter, ds.WindowWidth = "400", "1800"  # a bone window
    store(platform, ct)
    arrive(platform)
    own = render(ct[1], viewport=Viewport(256, 256), media_type="image/png")
    soft = render(ct[1], window=CT_SOFT_TISSUE, viewport=Viewport(256, 256), media_type="image/png")
    thumb = _pixels(_stored(platform, ct[0].SeriesInstanceUID))
    assert _difference(thumb, _pixels(own)) < 0.5 < _difference(thumb, _pixels(soft))


def _overlay_checked(png: bytes, mask: npt.NDArray[np.bool_]) -> None:
    """The palette's first colour (red, half transparent) inside the mask, gray outside."""
    pixels = _pixels(png)
    assert pixels.shape == (256, 256, 3)
    scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (256, 256), Image.Resampling.NEAREST
    )
    inside = np.asarray(scaled.filter(ImageFilter.MinFilter(25))) > 0
    outside = np.asarray(scaled.filter(ImageFilter.MaxFilter(25))) == 0
    assert inside.sum() > 1000 and outside.sum() > 1000
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert SEGMENT_PALETTE[0] == (255, 0, 0)
    assert np.all(red[inside] - green[inside] > 100)
    assert np.allclose(green[inside], blue[inside], atol=2)
    assert np.all(np.abs(red[outside] - green[outside]) <= 2)
    assert np.all(np.abs(green[outside] - blue[outside]) <= 2)


def test_a_seg_is_drawn_over_its_image(platform: Platform) -> None:
    ct = ct_series(rows=64, columns=64, slices=5, seed=6)
    seg = ct_segmentation(ct, seed=6, labels=["body"])
    store(platform, [*ct, seg])
    arrive(platform)
    body = phantom_slice(2, rows=64, columns=64, slices=5, seed=6).masks["body"]
    _overlay_checked(_stored(platform, seg.SeriesInstanceUID), body)


def test_a_seg_that_arrives_first_gets_its_overlay_with_the_image(platform: Platform) -> None:
    ct = ct_series(rows=64, columns=64, slices=5, seed=7)
    seg = ct_segmentation(ct, seed=7, labels=["body"])
    store(platform, [seg])
    arrive(platform)
    assert _stored(platform, seg.SeriesInstanceUID) == document_icon("SEG")

    store(platform, ct)
    arrive(platform)
    body = phantom_slice(2, rows=64, columns=64, slices=5, seed=7).masks["body"]
    _overlay_checked(_stored(platform, seg.SeriesInstanceUID), body)


def _looks_like_a_page(png: bytes) -> None:
    pixels = _pixels(png).mean(axis=2)
    assert pixels.shape == (256, 256)
    assert pixels[:20, :20].mean() < 80 and pixels[-20:, -20:].mean() < 80  # background
    assert pixels[100:200, 70:110].mean() > 150  # the page


@pytest.mark.parametrize(("make", "label"), [(sr_referencing, "SR"), (pdf_in_study_of, "PDF")])
def test_objects_without_pixels_get_a_document_icon(
    platform: Platform, make: Callable[[Sequence[Dataset]], Dataset], label: str
) -> None:
    ct = ct_series(rows=32, columns=32, slices=3, seed=8)
    document = make(ct)
    store(platform, [document])
    arrive(platform)
    png = _stored(platform, document.SeriesInstanceUID)
    _looks_like_a_page(png)
    other = "PDF" if label == "SR" else "SR"
    assert png == document_icon(label) != document_icon(other)


def _series_path(ds: Dataset) -> str:
    return f"studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"


def test_rest_and_dicomweb_serve_the_stored_thumbnail(site: Site) -> None:
    ds = site.study_a[0]
    platform = site.platform
    key = thumbnail_key(ds.SeriesInstanceUID)
    assert not platform.results.exists(key)

    made = site.get(f"/api/v1/series/{ds.SeriesInstanceUID}/thumbnail", who="sci_a")
    assert made.status_code == 200 and made.headers["content-type"] == "image/png"
    assert platform.results.get(key) == made.content  # made on demand and kept
    assert Image.open(io.BytesIO(made.content)).size == (256, 256)

    marker = document_icon("KEPT")  # what is stored is what is served, not a new rendering
    platform.results.put(key, marker)
    assert site.get(f"/api/v1/series/{ds.SeriesInstanceUID}/thumbnail").content == marker
    for root in ("/dicomweb/", "/dicomweb/projects/A/"):
        for params, accept in (({}, None), ({"size": "256"}, "image/png"), ({}, "image/*")):
            headers = {"Accept": accept} if accept else {}
            answer = site.get(
                root + _series_path(ds) + "/thumbnail", params=params, headers=headers
            )
            assert answer.status_code == 200 and answer.content == marker

    asked = site.get("/dicomweb/" + _series_path(ds) + "/thumbnail", params={"size": "64"})
    assert asked.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(asked.content)).size == (64, 64)
    jpeg = site.get(
        "/dicomweb/" + _series_path(ds) + "/thumbnail", headers={"Accept": "image/jpeg"}
    )
    assert jpeg.headers["content-type"] == "image/jpeg"


def test_another_projects_series_is_not_found(site: Site) -> None:
    ds = site.study_a[0]
    for path in (
        f"/api/v1/series/{ds.SeriesInstanceUID}/thumbnail",
        "/dicomweb/" + _series_path(ds) + "/thumbnail",
        "/dicomweb/projects/B/" + _series_path(ds) + "/thumbnail",
    ):
        answer = site.get(path, who="sci_b")
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/json")
    assert not site.platform.results.exists(thumbnail_key(ds.SeriesInstanceUID))
    assert site.get("/api/v1/series/1.2.3/thumbnail", who="admin").status_code == 404
    assert (
        site.get(f"/api/v1/series/{ds.SeriesInstanceUID}/thumbnail", who="anonymous").status_code
        == 401
    )


def test_a_multi_frame_object_shows_its_middle_frame(platform: Platform) -> None:
    path = get_testdata_file("emri_small.dcm")  # MR, 10 frames
    assert path is not None
    ds = dcmread(path)
    store(platform, [ds])
    arrive(platform)
    thumb = _pixels(_stored(platform, ds.SeriesInstanceUID))
    frames = int(ds.NumberOfFrames)
    view = Viewport(256, 256)
    middle = _pixels(render(ds, frame=(frames + 1) // 2, viewport=view, media_type="image/png"))
    first = _pixels(render(ds, frame=1, viewport=view, media_type="image/png"))
    assert thumb.shape == (256, 256, 3)
    assert _difference(thumb, middle) < 0.5 < _difference(thumb, first)


def test_a_seg_is_not_drawn_over_an_image_its_project_cannot_see(site: Site) -> None:
    ct = site.study_a[:4]  # the CT of project A
    seg = ct_segmentation(ct, seed=1, labels=["body"])
    store(site.platform, [seg], project="B")
    arrive(site.platform)
    answer = site.get(f"/api/v1/series/{seg.SeriesInstanceUID}/thumbnail", who="sci_b")
    assert answer.status_code == 200 and answer.content == document_icon("SEG")
