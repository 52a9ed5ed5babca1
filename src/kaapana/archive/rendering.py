"""Rendered frames and thumbnails: the PS3.18 ``rendered`` and ``thumbnail`` resources.

A rendered image is what a display would show without a presentation state: grayscale goes
through the modality LUT and a VOI transformation to 8 bits (MONOCHROME1 inverted), colour is
RGB. Only the frame asked for is decoded, so a thumbnail of a 2000-frame object costs one frame.
Every object is rendered without a presentation state; the route chooses the object and frame.
"""

import io
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi

from kaapana.archive.frames import decode_frame, frame_count, frame_index
from kaapana.errors import InvalidDicom, InvalidInput

__all__ = ["RENDERED_MEDIA_TYPES", "Viewport", "render", "thumbnail"]

RENDERED_MEDIA_TYPES: Final = ("image/gif", "image/jpeg", "image/png")
_PILLOW_FORMATS: Final = {"image/gif": "GIF", "image/jpeg": "JPEG", "image/png": "PNG"}
_GRAYSCALE: Final = ("MONOCHROME1", "MONOCHROME2")
_VOI_FUNCTIONS: Final = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

Pixels = npt.NDArray[np.generic]
Levels = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Viewport:
    """PS3.18 8.3.5.1.3 ``viewport=vw,vh[,sx,sy,sw,sh]``.

    The source region (top-left ``sx``, ``sy``; size ``sw``, ``sh``; by default the whole image
    from that corner on) is cut out first and then scaled to the largest size that fits in
    ``vw`` x ``vh`` without distorting it. A negative ``sw`` or ``sh`` takes the region to the
    left of or above the corner and flips it.
    """

    vw: int
    vh: int
    sx: int | None = None
    sy: int | None = None
    sw: int | None = None
    sh: int | None = None

    def __post_init__(self) -> None:
        for name in ("vw", "vh"):
            value = getattr(self, name)
            if value <= 0:
                raise InvalidInput(f"viewport '{name}' must be a positive size, got {value}")
        for name in ("sw", "sh"):
            if getattr(self, name) == 0:
                raise InvalidInput(f"viewport '{name}' must not be 0")


def render(
    ds: Dataset,
    *,
    frame: int = 1,
    window: tuple[float, float] | None = None,
    viewport: Viewport | None = None,
    media_type: str = "image/jpeg",
    quality: int = 90,
) -> bytes:
    """Frame ``frame`` (1-based) of ``ds`` encoded as ``media_type``.

    ``window`` (center, width) replaces the object's own VOI for grayscale images with a
    LINEAR window, as PS3.18 ``window`` does; colour images ignore it. ``quality`` (1-100)
    only matters for JPEG.
    """
    if media_type not in _PILLOW_FORMATS:
        raise InvalidInput(
            f"'media_type' must be one of {', '.join(RENDERED_MEDIA_TYPES)}, got {media_type!r}"
        )
    if not 1 <= quality <= 100:
        raise InvalidInput(f"'quality' must be 1-100, got {quality}")
    if window is not None and window[1] < 1:
        raise InvalidInput(f"'window' width must be at least 1, got {window[1]}")
    image = _image(ds, frame, window)
    if viewport is not None:
        image = _in_viewport(image, viewport)
    buffer = io.BytesIO()
    if media_type == "image/jpeg":
        image.save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, _PILLOW_FORMATS[media_type])
    return buffer.getvalue()


def thumbnail(ds: Dataset, *, size: int = 128, media_type: str = "image/jpeg") -> bytes:
    """The middle frame of ``ds`` fitted into ``size`` x ``size``: for a multi-frame object
    the middle is likelier than the first to show the anatomy rather than its edge."""
    if size <= 0:
        raise InvalidInput(f"'size' must be a positive number of pixels, got {size}")
    middle = (frame_count(ds) + 1) // 2
    return render(ds, frame=middle, viewport=Viewport(size, size), media_type=media_type)


def _image(ds: Dataset, frame: int, window: tuple[float, float] | None) -> Image.Image:
    index = frame_index(ds, frame)
    pixels = decode_frame(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric in _GRAYSCALE:
        gray = _grayscale(ds, index, pixels, window)
        return Image.fromarray(255 - gray if photometric == "MONOCHROME1" else gray)
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds)
        return Image.fromarray(_to_8_bits(rgb, rgb.dtype.itemsize * 8))
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        # pydicom has converted YBR_FULL, YBR_FULL_422 and the JPEG 2000 colour spaces to RGB
        return Image.fromarray(_to_8_bits(pixels, int(ds.BitsStored)))
    raise InvalidDicom(f"PhotometricInterpretation {photometric!r} cannot be rendered")


def _to_8_bits(rgb: Pixels, bits: int) -> npt.NDArray[np.uint8]:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.uint8, copy=False)
    scaled: Levels = rgb.astype(np.float64) * (255 / (2**bits - 1))
    return np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)


def _functional_group(ds: Dataset, index: int, keyword: str) -> Dataset | None:
    """The item of the functional group macro ``keyword`` that applies to frame ``index`` of
    an enhanced multi-frame object (per-frame before shared), or None for classic objects."""
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        groups.append(per_frame[index])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        macro = group.get(keyword)
        if macro:
            item: Dataset = macro[0]
            return item
    return None


def _grayscale(
    ds: Dataset, index: int, pixels: Pixels, window: tuple[float, float] | None
) -> npt.NDArray[np.uint8]:
    """Modality LUT, then the first VOI that applies: the request's window, the object's
    window, its VOI LUT, and failing all of them the frame's own value range."""
    transform = _functional_group(ds, index, "PixelValueTransformationSequence")
    rescale = transform if transform is not None and "RescaleSlope" in transform else ds
    values = apply_modality_lut(pixels, rescale)
    own = _own_window(_functional_group(ds, index, "FrameVOILUTSequence") or ds)
    if window is not None:
        levels = _windowed(values, window[0], window[1], "LINEAR")
    elif own is not None:
        levels = _windowed(values, *own)
    elif ds.get("VOILUTSequence"):
        depth = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        levels = apply_voi(np.rint(values).astype(np.int64), ds).astype(np.float64) / (2**depth - 1)
    else:
        levels = _stretched(values)
    return np.rint(np.clip(levels, 0, 1) * 255).astype(np.uint8)


def _own_window(voi: Dataset) -> tuple[float, float, str] | None:
    """The object's first window, or None when it has none that the VOI functions accept."""
    center, width = voi.get("WindowCenter"), voi.get("WindowWidth")
    if center in (None, "") or width in (None, ""):
        return None
    first_center = float(center[0] if isinstance(center, MultiValue) else center)
    first_width = float(width[0] if isinstance(width, MultiValue) else width)
    function = str(voi.get("VOILUTFunction") or "LINEAR").strip().upper()
    if function not in _VOI_FUNCTIONS:
        function = "LINEAR"
    usable = first_width >= 1 if function == "LINEAR" else first_width > 0
    return (first_center, first_width, function) if usable else None


def _windowed(values: Pixels, center: float, width: float, function: str) -> Levels:
    """PS3.3 C.11.2.1.2 and C.11.2.1.3 onto [0, 1].

    pydicom's ``apply_windowing`` maps onto the stored-value range instead and rewrites
    attributes of the dataset it is given, so the formulas are applied here.
    """
    x = values.astype(np.float64)
    if function == "SIGMOID":
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-4 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0, 1)
    if width == 1:
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


def _stretched(values: Pixels) -> Levels:
    x = values.astype(np.float64)
    low, high = float(x.min()), float(x.max())
    if high == low:
        return np.zeros_like(x)
    return (x - low) / (high - low)


def _in_viewport(image: Image.Image, viewport: Viewport) -> Image.Image:
    columns, rows = image.size
    sx, sy = viewport.sx or 0, viewport.sy or 0
    sw = viewport.sw if viewport.sw is not None else columns - sx
    sh = viewport.sh if viewport.sh is not None else rows - sy
    left, right = sorted((sx, sx + sw))
    top, bottom = sorted((sy, sy + sh))
    if left < 0 or top < 0 or right > columns or bottom > rows or left == right or top == bottom:
        raise InvalidInput(
            f"viewport source region sx={sx}, sy={sy}, sw={sw}, sh={sh} is not inside "
            f"the {columns}x{rows} image"
        )
    region = image.crop((left, top, right, bottom))
    if sw < 0:
        region = region.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if sh < 0:
        region = region.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    scale = min(viewport.vw / region.width, viewport.vh / region.height)
    size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    if size == region.size:
        return region
    return region.resize(size, Image.Resampling.LANCZOS)
