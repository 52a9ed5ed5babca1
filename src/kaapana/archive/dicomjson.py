"""DICOM JSON (PS3.18 F.2) of a parsed data set, straight from the raw element bytes.

pydicom's ``Dataset.to_json_dict`` first turns every raw element into a ``DataElement`` (VR
lookup, hooks, value classes, validation) and then encodes it; at ingest that was the largest
share of the CPU spent per object. This encoder reads the common cases (little endian numbers,
ASCII text, person names without ideographic or phonetic parts, binary data, sequences) from the
raw bytes and reproduces pydicom's output exactly; any other element (private or ambiguous VRs in
implicit transfer syntaxes, UN, AT, non-ASCII text, values that are not clean numbers, ...) goes
through pydicom itself, so the result is always what ``to_json_dict`` gives.
"""

import base64
import re
import struct
from collections.abc import Callable
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

BulkDataURI = Callable[[int], str]

_NUMBERS = {
    "US": ("H", 2),
    "SS": ("h", 2),
    "UL": ("L", 4),
    "SL": ("l", 4),
    "FL": ("f", 4),
    "FD": ("d", 8),
    "UV": ("Q", 8),
    "SV": ("q", 8),
}
_BINARY = frozenset({"OB", "OD", "OF", "OL", "OV", "OW"})
# Strings whose values pydicom splits at backslashes and strips of trailing spaces and NULs.
_SPLIT = frozenset({"AS", "CS", "DA", "DT", "TM"})
_TEXT_SPLIT = frozenset({"SH", "LO", "UC"})  # text in the data set's character set, multi-valued
_TEXT_SINGLE = frozenset({"ST", "LT", "UT"})  # text that may contain backslashes
# pydicom corrects the first value of these (US or SS) descriptors; left to it.
_LUT_DESCRIPTORS = frozenset({0x00283002, 0x00281101, 0x00281102, 0x00281103})
_INT = re.compile(r" *[+-]?[0-9]+ *")
_FLOAT = re.compile(r" *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *")
_VR_CACHE: dict[int, str | None] = {}
_UNDEFINED_LENGTH = 0xFFFFFFFF


class _Fallback(Exception):
    """The element is outside the fast subset; pydicom encodes it."""


def _implicit_vr(tag: int) -> str:
    vr = _VR_CACHE.get(tag, "")
    if vr == "":
        try:
            found = None if (tag >> 16) & 1 else dictionary_VR(tag)  # odd groups: private
        except KeyError:
            found = None
        vr = found if found is not None and len(found) == 2 and found != "UN" else None
        _VR_CACHE[tag] = vr
    if vr is None:
        raise _Fallback
    return vr


def _text(value: bytes) -> str:
    """Text in the data set's character set: ASCII without escapes decodes alike in all of them."""
    if not value.isascii() or b"\x1b" in value:
        raise _Fallback
    return value.decode("ascii")


def _values(items: list[Any], vr: str) -> dict[str, Any]:
    if len(items) == 1 and items[0] == "":
        return {"vr": vr}
    return {"vr": vr, "Value": items}


def _numbers(pattern: re.Pattern[str], convert: type, text: str, vr: str) -> dict[str, Any]:
    items = text.rstrip(" \x00").split("\\")
    if not all(pattern.fullmatch(item) for item in items):
        raise _Fallback
    return {"vr": vr, "Value": [convert(item) for item in items]}


def _element(
    raw: RawDataElement, vr: str, prefix: str, threshold: int, ds: Dataset
) -> dict[str, Any]:
    value = raw.value
    if value is None:  # deferred: only the length is known, which is all bulk data needs
        if vr in _BINARY and raw.length != _UNDEFINED_LENGTH and raw.length > threshold // 4 * 3:
            return {"vr": vr, "BulkDataURI": f"{prefix}/bulkdata/{raw.tag:08X}"}
        raise _Fallback
    if vr == "SQ":
        sequence = ds[raw.tag].value
        return {"vr": "SQ", "Value": [_dataset(item, prefix, threshold) for item in sequence]}
    if not value:
        return {"vr": vr}
    if vr in _BINARY:
        if len(value) > (threshold // 4) * 3:
            return {"vr": vr, "BulkDataURI": f"{prefix}/bulkdata/{raw.tag:08X}"}
        return {"vr": vr, "InlineBinary": base64.b64encode(value).decode()}
    number = _NUMBERS.get(vr)
    if number is not None:
        code, size = number
        if len(value) % size or raw.tag in _LUT_DESCRIPTORS:
            raise _Fallback
        order = "<" if raw.is_little_endian else ">"
        return {"vr": vr, "Value": list(struct.unpack(f"{order}{len(value) // size}{code}", value))}
    if vr in _SPLIT:
        return _values(value.decode("latin-1").rstrip(" \x00").split("\\"), vr)
    if vr == "UI":
        return _values(value.decode("latin-1").rstrip("\x00 ").split("\\"), vr)
    if vr in _TEXT_SPLIT:
        return _values([item.rstrip("\x00 ") for item in _text(value).split("\\")], vr)
    if vr in _TEXT_SINGLE:
        return _values([_text(value).rstrip("\x00 ")], vr)
    if vr == "PN":
        names = _text(value.rstrip(b"\x00 ")).split("\\")
        if b"=" in value or (len(names) > 1 and not all(names)):
            raise _Fallback
        if names == [""]:
            return {"vr": vr}
        return {"vr": vr, "Value": [{"Alphabetic": name} for name in names]}
    if vr == "AE":
        return _values([item.strip() for item in value.decode("latin-1").split("\\")], vr)
    if vr == "IS" and not config.use_IS_numpy:
        return _numbers(_INT, int, value.decode("latin-1"), vr)
    if vr == "DS" and not config.use_DS_numpy:
        return _numbers(_FLOAT, float, value.decode("latin-1").strip(), vr)
    if vr == "UR":
        text = value.decode("latin-1").rstrip()
        if "\\" in text:
            raise _Fallback
        return _values([text], vr)
    raise _Fallback


def _encode(ds: Dataset, tag: int, prefix: str, threshold: int) -> dict[str, Any]:
    """One element's JSON; raises whatever pydicom raises for a value that does not convert."""
    raw = ds._dict[tag]
    if isinstance(raw, RawDataElement) and not config.datetime_conversion:
        try:
            vr = raw.VR if raw.VR is not None else _implicit_vr(tag)
            if vr != "UN":
                return _element(raw, vr, prefix, threshold, ds)
        except _Fallback:
            pass
    element: DataElement = ds[tag]

    def bulk_data_uri(element: DataElement) -> str:
        return f"{prefix}/bulkdata/{element.tag:08X}"

    return element.to_json_dict(bulk_data_uri, threshold)


def _dataset(ds: Dataset, prefix: str, threshold: int) -> dict[str, Any]:
    return {f"{tag:08X}": _encode(ds, tag, prefix, threshold) for tag in list(ds._dict)}


def dataset_json(
    ds: Dataset, prefix: str, threshold: int, on_error: Callable[[int, Exception], None]
) -> dict[str, Any]:
    """The DICOM JSON of ``ds``, as pydicom's ``to_json_dict(threshold, handler)`` gives it.

    Bulk data URIs are ``{prefix}/bulkdata/{tag}``. A top-level element that does not convert
    (an IS of "x", anywhere inside a sequence too) is left out and reported to ``on_error``.
    """
    result: dict[str, Any] = {}
    for tag in list(ds._dict):  # pydicom's order: as read
        try:
            result[f"{tag:08X}"] = _encode(ds, tag, prefix, threshold)
        except Exception as exc:
            on_error(tag, exc)
    return result


__all__ = ["dataset_json"]
