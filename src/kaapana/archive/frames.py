"""Single frames of a stored object, as the WADO-RS ``frames/{list}`` resource returns them.

A frame is answered in the transfer syntax it is stored in whenever possible: native pixel data
as its raw bytes (PS3.18 bulk data is little endian), compressed pixel data as the bitstream of
that frame, untouched, so a viewer gets the stored quality and the archive decodes nothing.
:func:`decompress_frames` is the fallback for clients that accept only uncompressed frames.

Frame numbers are 1-based, as in the URL; indices into pydicom are 0-based.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import iter_pixels, pack_bits
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from kaapana.errors import InvalidDicom, InvalidInput, NotFound

__all__ = [
    "OCTET_STREAM",
    "Frame",
    "decode_frame",
    "decompress_frames",
    "frame_count",
    "frame_index",
    "frame_media_type",
    "read_frames",
]

OCTET_STREAM: Final = "application/octet-stream"

# PS3.18 Table 8.7.3-2: the media type of a single frame in each compressed transfer syntax.
_FRAME_MEDIA_TYPES: Final[Mapping[str, str]] = {
    JPEGBaseline8Bit: "image/jpeg",
    JPEGExtended12Bit: "image/jpeg",
    JPEGLossless: "image/jpeg",
    JPEGLosslessSV1: "image/jpeg",
    JPEGLSLossless: "image/jls",
    JPEGLSNearLossless: "image/jls",
    JPEG2000Lossless: "image/jp2",
    JPEG2000: "image/jp2",
    JPEG2000MCLossless: "image/jpx",
    JPEG2000MC: "image/jpx",
    HTJ2KLossless: "image/jphc",
    HTJ2KLosslessRPCL: "image/jphc",
    HTJ2K: "image/jphc",
    RLELossless: "image/dicom-rle",
    # JPEG XL Lossless, JPEG XL JPEG Recompression, JPEG XL (not yet named by pydicom)
    "1.2.840.10008.1.2.4.110": "image/jxl",
    "1.2.840.10008.1.2.4.111": "image/jxl",
    "1.2.840.10008.1.2.4.112": "image/jxl",
}

_PIXEL_KEYWORDS: Final = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame as a WADO-RS part: its bytes and what goes into the part's Content-Type."""

    data: bytes
    media_type: str
    transfer_syntax_uid: str


def frame_media_type(transfer_syntax_uid: str) -> str:
    """The media type of one frame stored in ``transfer_syntax_uid``; native, deflated and
    unknown syntaxes are octet streams."""
    return _FRAME_MEDIA_TYPES.get(str(transfer_syntax_uid), OCTET_STREAM)


def frame_count(ds: Dataset) -> int:
    """How many frames ``ds`` holds: 0 without pixel data (an SR, a KOS), else Number of
    Frames, where an absent or zero value means the single frame of a single-frame object."""
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        return 0
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError) as exc:
        raise InvalidDicom(f"NumberOfFrames is not a number: {ds.NumberOfFrames!r}") from exc


def frame_index(ds: Dataset, number: int) -> int:
    """The 0-based index of the 1-based frame ``number``; refuses what no frame answers."""
    count = frame_count(ds)
    if count == 0:
        kind = UID(ds.get("SOPClassUID") or "").name or "the object"
        raise NotFound(f"{kind} has no pixel data, so it has no frames")
    if number <= 0:
        raise InvalidInput(f"frame numbers start at 1, got {number}")
    if number > count:
        raise NotFound(f"frame {number} does not exist: the object has {count} frame(s)")
    return number - 1


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        raise InvalidDicom("the object has no TransferSyntaxUID in its file meta")
    return UID(syntax)


def _indices(ds: Dataset, numbers: Sequence[int]) -> list[int]:
    if not numbers:
        raise InvalidInput("'numbers' must name at least one frame, got none")
    return [frame_index(ds, number) for number in numbers]


def read_frames(ds: Dataset, numbers: Sequence[int]) -> list[Frame]:
    """The frames ``numbers`` (1-based, in the order asked, repeats allowed) as stored."""
    indices = _indices(ds, numbers)
    syntax = _transfer_syntax(ds)
    if syntax.is_encapsulated:
        media_type = frame_media_type(syntax)
        stored = _encapsulated_frames(ds, indices)
        return [Frame(stored[index], media_type, syntax) for index in indices]
    if not syntax.is_little_endian:
        return [_native_frame_from_array(ds, number) for number in numbers]
    return [
        Frame(_native_frame(ds, index), OCTET_STREAM, ExplicitVRLittleEndian) for index in indices
    ]


def _encapsulated_frames(ds: Dataset, indices: Sequence[int]) -> dict[int, bytes]:
    """One pass over the fragments, stopping after the last frame asked for; pydicom finds
    the frame boundaries from the Extended or Basic Offset Table, else from the fragments."""
    wanted = set(indices)
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    found: dict[int, bytes] = {}
    count = frame_count(ds)
    try:
        frames = generate_frames(ds.PixelData, number_of_frames=count, extended_offsets=offsets)
        for index, data in enumerate(frames):
            if index in wanted:
                found[index] = data
                if len(found) == len(wanted):
                    break
    except ValueError as exc:
        raise InvalidDicom(
            f"the encapsulated pixel data cannot be split into frames: {exc}"
        ) from exc
    missing = sorted(wanted - found.keys())
    if missing:
        raise InvalidDicom(
            f"NumberOfFrames is {count} but the encapsulated pixel data holds no frame "
            f"{missing[0] + 1}"
        )
    return found


def _native_frame(ds: Dataset, index: int) -> bytes:
    """A native frame cut out of the little endian pixel data; frames of 1-bit data need not
    start on a byte boundary, so the cut is made in bits and the frame packed from bit 0."""
    keyword = next(keyword for keyword in _PIXEL_KEYWORDS if keyword in ds)
    data: bytes = ds[keyword].value
    rows, columns, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    # YBR_FULL_422 stores two values per pixel: the chroma is shared by pixel pairs
    samples = int(ds.get("SamplesPerPixel") or 1)
    if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
        samples = 2
    length = rows * columns * samples * bits
    start = index * length
    if len(data) * 8 < start + length:
        raise InvalidDicom(
            f"{keyword} holds {len(data)} bytes, too few for frame {index + 1} "
            f"of {rows}x{columns}x{samples} values of {bits} bits"
        )
    if start % 8 == 0 and length % 8 == 0:
        return bytes(data[start // 8 : (start + length) // 8])
    first, last = start // 8, -(-(start + length) // 8)
    bit_values = np.unpackbits(np.frombuffer(data[first:last], np.uint8), bitorder="little")
    offset = start - first * 8
    return np.packbits(bit_values[offset : offset + length], bitorder="little").tobytes()


def _native_frame_from_array(ds: Dataset, number: int) -> Frame:
    """Big endian pixel data (a retired syntax) re-encoded little endian, as pydicom reads it."""
    values = decode_frame(ds, number, raw=True)
    return Frame(_native_bytes(ds, values), OCTET_STREAM, ExplicitVRLittleEndian)


def _native_bytes(ds: Dataset, values: npt.NDArray[np.generic]) -> bytes:
    """Decoded values as native little endian pixel data: 1-bit data packed, the rest in the
    array's own width (which pydicom chooses from Bits Allocated)."""
    if int(ds.BitsAllocated) == 1:
        return pack_bits(values, pad=False)
    return values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()


def decode_frame(ds: Dataset, number: int, *, raw: bool = False) -> npt.NDArray[np.generic]:
    """The pixel values of frame ``number`` alone, decoded by pydicom and its plugins.

    Only that frame is decoded, however many the object holds. Without ``raw``, YBR colour
    comes back as RGB, which is what anything downstream of a decoder expects.
    """
    index = frame_index(ds, number)
    syntax = _transfer_syntax(ds)
    try:
        return next(iter_pixels(ds, indices=[index], raw=raw))
    # the decoding plugins raise whatever their libraries raise
    except Exception as exc:
        raise InvalidDicom(
            f"frame {number} of the {syntax.name} pixel data cannot be decoded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def decompress_frames(ds: Dataset, numbers: Sequence[int]) -> list[Frame]:
    """The frames ``numbers`` as uncompressed octet streams, for clients that take no image
    media type: compressed frames are decoded (colour as RGB, interleaved), native frames
    are returned as stored."""
    _indices(ds, numbers)
    if not _transfer_syntax(ds).is_encapsulated:
        return read_frames(ds, numbers)
    return [
        Frame(_native_bytes(ds, decode_frame(ds, number)), OCTET_STREAM, ExplicitVRLittleEndian)
        for number in numbers
    ]
