"""One 256-pixel PNG per series, kept in result storage for galleries and viewers.

The picture is what a reader would look at first: the middle slice by position (not file order),
windowed as its modality is read (the object's own window, CT soft tissue otherwise, min-max for
the rest), the middle frame of a multi-frame object, a DICOM SEG drawn in its segment colours over
the image it segments, and a document icon for objects without pixels (SR, PDF, ...).
"""

import io
import logging
import warnings
from collections.abc import Sequence
from typing import Final

import highdicom as hd
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedPDFStorage, SegmentationStorage
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kaapana.archive.deletion import SeriesResults
from kaapana.archive.frames import frame_count
from kaapana.archive.rendering import render
from kaapana.archive.visibility import ProjectScope
from kaapana.catalog.lookup import visible_series_row
from kaapana.catalog.references import stored_references
from kaapana.catalog.slices import Slice, middle, series_slices
from kaapana.db.engine import session_factory
from kaapana.db.models import Series, SeriesProject
from kaapana.errors import NotFound
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)

THUMBNAIL_SIZE: Final = 256
THUMBNAIL_MEDIA_TYPE: Final = "image/png"
CT_SOFT_TISSUE: Final = (40.0, 400.0)  # window center, width in HU
OVERLAY_OPACITY: Final = 0.5
# Distinct colours for segments without a RecommendedDisplayCIELabValue.
SEGMENT_PALETTE: Final = (
    (255, 0, 0),
    (0, 200, 0),
    (0, 80, 255),
    (255, 200, 0),
    (255, 0, 255),
    (0, 220, 220),
    (255, 128, 0),
    (128, 0, 255),
)
_ICON_BACKGROUND: Final = (40, 44, 52)
_ICON_PAPER: Final = (236, 239, 244)
_ICON_INK: Final = (46, 52, 64)


def thumbnail_key(series_instance_uid: str) -> str:
    """Where the thumbnail of a series lives in result storage."""
    return f"thumbnails/{series_instance_uid}.png"


def thumbnail_results(results: ObjectStore) -> SeriesResults:
    """The thumbnails as the result files a series removal deletes with the series."""
    return SeriesResults(results, lambda series_instance_uid: (thumbnail_key(series_instance_uid),))


def _read(store: ObjectStore, storage_key: str) -> Dataset:
    with store.open(storage_key) as stream, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(stream)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _fit(image: Image.Image) -> Image.Image:
    """Scaled so that the long side is ``THUMBNAIL_SIZE``, without distortion."""
    scale = THUMBNAIL_SIZE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def _has_own_voi(ds: Dataset) -> bool:
    """A window or VOI LUT of its own, also in an enhanced object's functional groups."""
    groups = [*(ds.get("SharedFunctionalGroupsSequence") or [])]
    groups += [*(ds.get("PerFrameFunctionalGroupsSequence") or [])][:1]
    return (
        ("WindowCenter" in ds and "WindowWidth" in ds)
        or bool(ds.get("VOILUTSequence"))
        or any(group.get("FrameVOILUTSequence") for group in groups)
    )


def _window(ds: Dataset) -> tuple[float, float] | None:
    """None lets the renderer use the object's window or stretch min-max; CT without a window
    of its own gets soft tissue, which shows the most anatomy in one picture."""
    if not _has_own_voi(ds) and str(ds.get("Modality", "")) == "CT":
        return CT_SOFT_TISSUE
    return None


def _rendered(ds: Dataset) -> Image.Image:
    """The middle frame of ``ds`` as an RGB image at its own size."""
    frame = (frame_count(ds) + 1) // 2
    png = render(ds, frame=frame, window=_window(ds), media_type=THUMBNAIL_MEDIA_TYPE)
    return Image.open(io.BytesIO(png)).convert("RGB")


def document_icon(label: str) -> bytes:
    """A page with a folded corner and ``label`` on it, for objects without pixel data."""
    image = Image.new("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE), _ICON_BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom, fold = 56, 28, 200, 228, 40
    draw.polygon(
        [(left, top), (right - fold, top), (right, top + fold), (right, bottom), (left, bottom)],
        fill=_ICON_PAPER,
    )
    draw.polygon(
        [(right - fold, top), (right - fold, top + fold), (right, top + fold)], fill=(180, 186, 196)
    )
    for y in range(top + 130, bottom - 20, 16):
        draw.line([(left + 20, y), (right - 20, y)], fill=(160, 166, 176), width=4)
    text = label[:6] or "DICOM"
    font = ImageFont.load_default(size=56 if len(text) <= 3 else 34)
    draw.text(((left + right) / 2, top + 80), text, fill=_ICON_INK, font=font, anchor="mm")
    return _png(image)


def _icon_label(ds: Dataset) -> str:
    if ds.get("SOPClassUID") == EncapsulatedPDFStorage:
        return "PDF"
    return str(ds.get("Modality") or "DICOM")


def segment_colors(seg: Dataset) -> dict[int, tuple[int, int, int]]:
    """Each segment's recommended display colour, else one of a fixed palette."""
    colors = {}
    for index, segment in enumerate(seg.get("SegmentSequence") or []):
        number = int(segment.SegmentNumber)
        lab = segment.get("RecommendedDisplayCIELabValue")
        if lab is not None and len(lab) == 3:
            colors[number] = hd.color.CIELabColor.from_dicom_value(lab).to_rgb(clip=True)
        else:
            colors[number] = SEGMENT_PALETTE[index % len(SEGMENT_PALETTE)]
    return colors


def _overlaid(
    image: Image.Image,
    masks: npt.NDArray[np.generic],
    colors: Sequence[tuple[int, int, int]],
) -> Image.Image:
    """``image`` with every mask (rows x columns x segments) blended in its colour."""
    pixels = np.asarray(image, dtype=np.float64).copy()
    for channel, color in enumerate(colors):
        where = masks[:, :, channel] > 0
        pixels[where] = (1 - OVERLAY_OPACITY) * pixels[where] + OVERLAY_OPACITY * np.asarray(
            color, dtype=np.float64
        )
    return Image.fromarray(np.rint(pixels).astype(np.uint8))


def _projects(session: Session, series_pk: int) -> frozenset[int]:
    return frozenset(
        session.scalars(
            select(SeriesProject.project_pk).where(SeriesProject.series_pk == series_pk)
        )
    )


def _segmentation_thumbnail(
    session: Session, store: ObjectStore, seg_ds: Dataset, series_pk: int
) -> bytes:
    """The SEG over the middle of the referenced slices it covers.

    The image must be visible wherever the SEG is: a thumbnail is one per series, so drawing
    an image that some of the SEG's projects cannot see would show it to them. Until such an
    image has arrived the thumbnail is the SEG icon (the arrival of the image makes it again).
    """
    seg = hd.seg.Segmentation.from_dataset(seg_ds, copy=False)
    covered = {uids[2] for uids in seg.get_source_image_uids()}
    seen_by = _projects(session, series_pk)
    candidates: list[Slice] = []
    for referenced_uid in stored_references(session, series_pk):
        image_pk = session.scalar(
            select(Series.id).where(Series.series_instance_uid == referenced_uid)
        )
        if image_pk is not None and seen_by <= _projects(session, image_pk):
            candidates += [
                s for s in series_slices(session, image_pk) if s.sop_instance_uid in covered
            ]
    if not candidates:
        return document_icon("SEG")
    chosen = middle(candidates)
    colors = segment_colors(seg_ds)
    numbers = sorted(colors)
    masks = seg.get_pixels_by_source_instance(
        [chosen.sop_instance_uid],
        segment_numbers=numbers,
        ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )[0]
    base = _rendered(_read(store, chosen.storage_key))
    return _png(_fit(_overlaid(base, masks, [colors[n] for n in numbers])))


def render_series_thumbnail(session: Session, store: ObjectStore, series_pk: int) -> bytes:
    """The PNG thumbnail of the series (not stored)."""
    slices = series_slices(session, series_pk)
    if not slices:
        raise NotFound(f"series {series_pk} has no instances")
    ds = _read(store, middle(slices).storage_key)
    if ds.get("SOPClassUID") == SegmentationStorage:
        return _segmentation_thumbnail(session, store, ds, series_pk)
    if frame_count(ds) == 0:
        return document_icon(_icon_label(ds))
    return _png(_fit(_rendered(ds)))


def make_series_thumbnail(
    *, engine: Engine, store: ObjectStore, results: ObjectStore, series_pk: int
) -> bytes:
    """Render the thumbnail of the series and keep it in result storage (atomically)."""
    with session_factory(engine)() as session:
        series_instance_uid = session.scalar(
            select(Series.series_instance_uid).where(Series.id == series_pk)
        )
        if series_instance_uid is None:
            raise NotFound(f"series {series_pk} not found")
        png = render_series_thumbnail(session, store, series_pk)
    results.put(thumbnail_key(series_instance_uid), png)
    log.info("thumbnail of series %s made", series_instance_uid)
    return png


def series_thumbnail(
    *,
    engine: Engine,
    store: ObjectStore,
    results: ObjectStore,
    series_instance_uid: str,
    projects: ProjectScope,
) -> bytes:
    """The stored thumbnail of a series the caller sees, made now when there is none yet."""
    with session_factory(engine)() as session:
        series_pk = visible_series_row(session, series_instance_uid, projects).id
    key = thumbnail_key(series_instance_uid)
    try:
        return results.get(key)
    except NotFound:
        return make_series_thumbnail(
            engine=engine, store=store, results=results, series_pk=series_pk
        )


__all__ = [
    "CT_SOFT_TISSUE",
    "SEGMENT_PALETTE",
    "THUMBNAIL_MEDIA_TYPE",
    "THUMBNAIL_SIZE",
    "document_icon",
    "make_series_thumbnail",
    "render_series_thumbnail",
    "segment_colors",
    "series_thumbnail",
    "thumbnail_key",
    "thumbnail_results",
]
