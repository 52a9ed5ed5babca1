"""The series viewer, the upload page and zip downloads in headless Chromium against uvicorn.

Project V holds a synthetic CT of a patient with a hostile name and its DICOM SEG, processed as
on arrival (references, validation, thumbnails). Shares the browser and the page watcher of
``test_browser``; with ``KAAPANA_SCREENSHOTS=<folder>`` it saves viewer.png and upload.png.
"""

import io
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import expect
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    generate_uid,
)

from kaapana.api import create_app
from kaapana.auth.roles import RoleValues
from kaapana.catalog import process_arrived_series
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import SEGMENT_LABELS, ct_segmentation, ct_series, mr_series, phantom_slice
from tests.helpers import part10
from tests.web import test_browser as shared
from tests.web.conftest import ADMIN_PASSWORD, HOSTILE_NAME, PASSWORD, serving
from tests.web.test_browser import CHROMIUM, Site, Watched, log_in, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (make test does)"),
]
SIZE = {"rows": 96, "columns": 96, "slices": 6}
browser = shared.browser
tab = shared.tab


class ViewerSite(Site):
    def __init__(
        self, url: str, platform: Platform, ct: list[Dataset], seg: Dataset, frames: Dataset
    ) -> None:
        super().__init__(url, platform)
        self.ct = ct
        self.seg = seg
        self.frames = frames


def multi_frame(ct: list[Dataset]) -> Dataset:
    """The CT's slices as the frames of one secondary capture object, in instance order."""
    ds = Dataset()
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyTime"):
        setattr(ds, keyword, getattr(ct[0], keyword))
    ds.SOPClassUID = MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["viewer-mf", ct[0].SeriesInstanceUID])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["viewer-mf-series", ct[0].SeriesInstanceUID])
    ds.Modality = "OT"
    ds.SeriesNumber = 9
    ds.InstanceNumber = 1
    ds.SeriesDescription = "frames"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ct[0].Rows, ct[0].Columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ordered = sorted(ct, key=lambda s: int(s.InstanceNumber))
    ds.NumberOfFrames = len(ordered)
    ds.PixelData = b"".join(s.PixelData for s in ordered)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerSite]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("viewer") / "data", admin_password=ADMIN_PASSWORD
    )
    with Platform(settings) as platform:
        platform.archive.projects.create("V", ae_title="PROJ_V")
        platform.auth.users.create("reader", password=PASSWORD)
        platform.auth.users.set_role(
            "reader", platform.archive.projects.get("V"), RoleValues.scientist
        )
        ct = ct_series(patient_id="VA", patient_name=HOSTILE_NAME, seed=7, **SIZE)
        with warnings.catch_warnings():  # highdicom doubts a one-component PatientName
            warnings.simplefilter("ignore", UserWarning)
            seg = ct_segmentation(ct, seed=7)
        frames = multi_frame(ct)
        target = platform.archive.target("V")
        for ds in [*ct, seg, frames]:
            platform.archive.store_bytes(part10(ds), target)
        platform.catalog.reindex()
        for uid in (ct[0].SeriesInstanceUID, seg.SeriesInstanceUID):
            process_arrived_series(platform.series_media, uid)
        app = create_app(settings, platform=platform)
        with TestClient(app), serving(app) as url:
            yield ViewerSite(url, platform, ct, seg, frames)


def canvas_pixels(tab: Watched) -> np.ndarray:
    png = tab.page.locator("#view").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_the_viewer_draws_the_ct_with_its_segmentation(tab: Watched, site: ViewerSite) -> None:
    page = tab.page
    series_uid = site.ct[0].SeriesInstanceUID
    page.goto(f"/login?next=/p/V/series/{series_uid}")
    log_in(page, "reader", PASSWORD)
    view = page.locator("#view")
    expect(page.locator("#legend li")).to_have_count(len(SEGMENT_LABELS))
    expect(page.locator("#viewer-status")).to_have_text("Segments shown on this slice.")
    expect(page.locator("#patient-name")).to_have_text(HOSTILE_NAME)
    assert page.locator("main img").count() == 0  # the name stayed text
    expect(page.locator("#validation .badge")).to_have_count(1)
    expect(page.get_by_role("link", name="SEG · SEG CT Thorax-Abdomen")).to_be_visible()

    sop = view.get_attribute("data-sop")
    shown = next(ds for ds in site.ct if ds.SOPInstanceUID == sop)
    masks = phantom_slice(int(shown.InstanceNumber) - 1, seed=7, **SIZE).masks
    colours = [
        tuple(int(c) for c in li.split(","))
        for li in page.locator("#legend li").evaluate_all("ls => ls.map((l) => l.dataset.colour)")
    ]
    pixels = canvas_pixels(tab)
    assert pixels.shape[0] == pixels.shape[1] > 400  # a square canvas, the image fitted in it
    scale = pixels.shape[1] / SIZE["columns"]
    anywhere = np.zeros((SIZE["rows"], SIZE["columns"]), bool)
    for label in SEGMENT_LABELS:
        anywhere |= masks[label]
    centres = (np.arange(SIZE["rows"]) * scale + scale / 2).astype(int)
    sampled = pixels[np.ix_(centres, centres)]
    checked = 0
    for number, label in enumerate(SEGMENT_LABELS):
        # a later segment is painted over an earlier one (the lungs over the body)
        later = np.zeros_like(anywhere)
        for other in SEGMENT_LABELS[number + 1 :]:
            later |= masks[other]
        alone = masks[label] & ~later
        if not alone.any():
            continue
        colour = np.array(colours[number])
        tinted = sampled[alone]
        # half opacity over grey: each pixel's deviation from its own grey level points the
        # way the segment's colour deviates from its grey level, and clearly so
        tint = tinted - tinted.mean(axis=1, keepdims=True)
        hue = colour - colour.mean()
        assert ((tint @ hue) > 0).mean() > 0.95, label
        assert (tinted.max(axis=1) - tinted.min(axis=1)).mean() > 30, label
        checked += 1
    assert checked >= 2
    outside = sampled[~anywhere]
    assert (outside.max(axis=1) - outside.min(axis=1) <= 2).all()  # grey image elsewhere
    screenshot(page, "viewer")
    for box in page.locator("#legend input").all():
        box.uncheck()
    expect(page.locator("#viewer-status")).to_have_text("")
    plain = canvas_pixels(tab)[np.ix_(centres, centres)]
    assert (plain.max(axis=2) - plain.min(axis=2) <= 2).all()  # only grey without the overlay
    assert plain[anywhere].std() > 5  # tissues of different grey under the segments
    page.locator("#legend input").first.check()

    before = int(view.get_attribute("data-slice") or 0)
    view.hover()
    page.mouse.wheel(0, 100)
    expect(view).to_have_attribute(
        "data-slice", str(before + 1 if before < SIZE["slices"] else before - 1)
    )
    view.focus()
    page.keyboard.press("Home")
    expect(view).to_have_attribute("data-slice", "1")
    page.locator("#slice").fill("3")
    expect(view).to_have_attribute("data-slice", "3")
    expect(page.locator("#slice-label")).to_have_text(f"3 / {SIZE['slices']}")

    page.locator("#preset").select_option(label="CT lung")
    expect(page.locator("#window-label")).to_have_text("C -600 W 1500")
    box = view.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + 100)
    page.mouse.up()
    expect(page.locator("#window-label")).not_to_have_text("C -600 W 1500")

    page.locator("#metadata-search").fill("PatientName")
    rows = page.locator("#metadata-rows tr:not([hidden])")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(HOSTILE_NAME)

    page.get_by_role("link", name="SEG · SEG CT Thorax-Abdomen").click()
    page.wait_for_url(f"**/p/V/series/{site.seg.SeriesInstanceUID}")
    expect(page.locator("#metadata-of")).to_have_text("(the segmentation object)")
    expect(page.locator("#viewer-status")).to_have_text("Segments shown on this slice.")
    expect(page.get_by_role("link", name="CT · CT Thorax-Abdomen")).to_be_visible()


def test_a_multi_frame_object_is_scrolled_frame_by_frame(tab: Watched, site: ViewerSite) -> None:
    page = tab.page
    frame_requests: list[str] = []
    page.on("request", lambda r: frame_requests.append(r.url) if "/frames/" in r.url else None)
    page.goto(f"/login?next=/p/V/series/{site.frames.SeriesInstanceUID}")
    log_in(page, "reader", PASSWORD)
    view = page.locator("#view")
    expect(view).to_have_attribute("data-drawn", "true")
    expect(page.locator("#slice")).to_have_attribute("max", str(SIZE["slices"]))
    expect(view).to_have_attribute("data-slice", str(SIZE["slices"] // 2 + 1))
    first = canvas_pixels(tab)
    view.focus()
    page.keyboard.press("ArrowDown")
    expect(view).to_have_attribute("data-slice", str(SIZE["slices"] // 2 + 2))
    assert not np.array_equal(first, canvas_pixels(tab))  # another frame is drawn
    assert len(frame_requests) == 1  # every frame of the object in one request
    assert frame_requests[0].endswith("/frames/1,2,3,4,5,6")


def test_upload_a_folder_and_a_zip_then_download_the_series_as_zip(
    tab: Watched, site: ViewerSite, tmp_path: Path
) -> None:
    page = tab.page
    folder = tmp_path / "drop" / "study"
    folder.mkdir(parents=True)
    mr = mr_series(patient_id="VU", rows=16, columns=16, slices=3, seed=8)
    for ds in mr:
        (folder / f"{ds.InstanceNumber}.dcm").write_bytes(part10(ds))
    (folder / "notes.txt").write_text("not DICOM")
    zipped = ct_series(patient_id="VZ", rows=16, columns=16, slices=2, seed=9)
    archive = tmp_path / "ct.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for ds in zipped:
            out.writestr(f"ct/{ds.InstanceNumber}.dcm", part10(ds))

    page.goto("/login?next=/p/V/upload")
    log_in(page, "reader", PASSWORD)
    page.locator("#pick-folder").set_input_files(tmp_path / "drop")
    expect(page.locator("#summary")).to_contain_text("3 stored, 0 failed, 1 skipped")
    expect(page.locator("#results li[data-outcome=stored]")).to_have_count(3)
    expect(page.locator("#results li[data-outcome=skipped]")).to_have_text(
        "drop/study/notes.txt — skipped: not a DICOM file"
    )
    screenshot(page, "upload")
    page.locator("#pick-files").set_input_files(archive)
    expect(page.locator("#summary")).to_contain_text("2 stored, 0 failed, 0 skipped")
    expect(page.locator("#results li", has_text="ct.zip/ct/1.dcm")).to_have_count(1)

    page.get_by_role("link", name="open the gallery").click()
    cards = page.locator("#cards .series-card")
    expect(cards).to_have_count(5)  # the CT, its SEG, the multi-frame object and the two new
    uploaded = {mr[0].SeriesInstanceUID, zipped[0].SeriesInstanceUID}
    for uid in uploaded:
        page.locator(f"#cards .series-card[data-uid='{uid}'] .patient").click()
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download zip").click()
    with zipfile.ZipFile(download.value.path()) as got:
        names = sorted(got.namelist())
        expected = sorted(
            f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
            for ds in [*mr, *zipped]
        )
        assert names == expected
        assert got.read(expected[0]) == next(
            part10(ds) for ds in [*mr, *zipped] if expected[0].endswith(f"{ds.SOPInstanceUID}.dcm")
        )
    events = site.platform.auth.audit.query(action="series.download")
    assert [(event.project, event.actor) for event in events] == [("V", "reader")]


def test_drag_a_box_over_cards_selects_them(tab: Watched, site: ViewerSite) -> None:
    page = tab.page
    page.goto("/login?next=/p/V/gallery")
    log_in(page, "reader", PASSWORD)
    cards = page.locator("#cards .series-card")
    expect(cards.first).to_be_visible()
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert first is not None and second is not None
    page.mouse.move(first["x"] + 4, first["y"] + 4)
    page.mouse.down()
    page.mouse.move(second["x"] + 10, second["y"] + 10, steps=5)
    page.mouse.up()
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    expect(cards.nth(0)).to_have_attribute("aria-selected", "true")
    expect(cards.nth(1)).to_have_attribute("aria-selected", "true")
