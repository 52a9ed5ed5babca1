"""Which representation a WADO-RS client gets, from its ``Accept`` header (PS3.18 §8.7).

Retrieval answers in the stored transfer syntax when the client accepts it (``transfer-syntax=*``
or that UID) and transcodes to Explicit VR Little Endian, PS3.18's default, when asked or when
nothing is said; frames come as stored (their image media type) or decompressed as
``application/octet-stream``. Anything else is 406 with what could have been served.
"""

from dataclasses import dataclass
from typing import Final

from pydicom.uid import ExplicitVRLittleEndian

from kaapana.archive.frames import OCTET_STREAM, frame_media_type
from kaapana.dicomweb.media_types import AcceptedType, parse_accept
from kaapana.errors import NotAcceptable

DICOM: Final = "application/dicom"
ANY_SYNTAX: Final = "*"


def _accepted(header: str | None) -> list[AcceptedType]:
    ranges = [r for r in parse_accept(header or "") if r.q > 0]
    return ranges or [AcceptedType("*/*")]


def _part_type(accepted: AcceptedType, default: str) -> str | None:
    """The part media type a range asks for: multipart's ``type`` or the range itself."""
    if accepted.type == "multipart/related":
        return accepted.params.get("type", default).lower()
    if accepted.type in ("*/*", "multipart/*"):
        return "*/*"
    return accepted.type


def dicom_transfer_syntax(header: str | None) -> str:
    """The transfer syntax wanted for ``application/dicom`` parts: a UID or ``*``."""
    for accepted in _accepted(header):
        part = _part_type(accepted, DICOM)
        if part == "*/*":
            return accepted.params.get("transfer-syntax", ANY_SYNTAX)
        if part == DICOM:
            return accepted.params.get("transfer-syntax", ExplicitVRLittleEndian)
    raise NotAcceptable(
        f'cannot answer Accept {header!r}: this resource is multipart/related; type="{DICOM}"'
    )


@dataclass(frozen=True, slots=True)
class FrameChoice:
    decompress: bool
    part_type: str  # full Content-Type of each part


def frame_representation(header: str | None, stored_syntax: str) -> FrameChoice:
    """As stored, or decompressed to octet-stream, as the client's ranges allow."""
    stored_type = frame_media_type(stored_syntax)
    as_stored = FrameChoice(False, f"{stored_type}; transfer-syntax={stored_syntax}")
    for accepted in _accepted(header):
        part = _part_type(accepted, OCTET_STREAM)
        syntax = accepted.params.get("transfer-syntax")
        if part == "*/*" or (part == stored_type and stored_type != OCTET_STREAM):
            return as_stored
        if part == OCTET_STREAM:
            if stored_type == OCTET_STREAM or syntax == ANY_SYNTAX:
                return FrameChoice(False, f"{OCTET_STREAM}; transfer-syntax={stored_syntax}")
            if syntax in (None, ExplicitVRLittleEndian):
                return FrameChoice(
                    True, f"{OCTET_STREAM}; transfer-syntax={ExplicitVRLittleEndian}"
                )
    raise NotAcceptable(
        f"cannot answer Accept {header!r}: frames are available as {stored_type} (stored) "
        f"or {OCTET_STREAM} (uncompressed)"
    )


def rendered_media_type(header: str | None, supported: tuple[str, ...]) -> str:
    for accepted in _accepted(header):
        if accepted.type in ("*/*", "image/*"):
            return "image/jpeg"
        if accepted.type in supported:
            return accepted.type
    raise NotAcceptable(
        f"cannot answer Accept {header!r}: rendered images are {', '.join(supported)}"
    )


def accepts_media_type(header: str | None, media_type: str) -> bool:
    """Whether the client's ranges admit ``media_type`` (absent and wildcards admit all)."""
    major = media_type.split("/", 1)[0]
    return any(accepted.type in ("*/*", f"{major}/*", media_type) for accepted in _accepted(header))


__all__ = [
    "ANY_SYNTAX",
    "DICOM",
    "FrameChoice",
    "accepts_media_type",
    "dicom_transfer_syntax",
    "frame_representation",
    "rendered_media_type",
]
