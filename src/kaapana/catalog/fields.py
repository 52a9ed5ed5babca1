"""Catalog field names: DICOM attributes by keyword or tag, sequence paths, derived fields.

A field is addressed as users know it (``SliceThickness``, ``00180050``,
``ReferencedSeriesSequence.SeriesInstanceUID``, ``0008115C.0020000E``) and stored under one
canonical name: the keyword of each path component, or its upper-case hex tag where the data
dictionary has no keyword (private tags). The value kind comes from the VR of the last
component, so a query can be checked before it reaches the database.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from kaapana.errors import InvalidInput

TAGS_FIELD: Final = "tags"
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_NUMBER_VRS: Final = frozenset({"DS", "IS", "FL", "FD", "SS", "US", "SL", "UL", "SV", "UV"})
# Values without a meaning for search: binary data, and raw values of unknown VR.
SKIPPED_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


class FieldKindValues(StrEnum):
    """How a field's values compare: text, numbers, DICOM dates (DA) and date-times (DT)."""

    text = "text"
    number = "number"
    date = "date"
    datetime = "datetime"
    tag = "tag"  # the project's tags (``series_tags``), not an attribute of the series
    unknown = "unknown"  # a private tag: its kind follows the query value


def kind_of_vr(vr: str | None) -> FieldKindValues:
    if vr is None:
        return FieldKindValues.unknown
    if vr in _NUMBER_VRS:
        return FieldKindValues.number
    if vr == "DA":
        return FieldKindValues.date
    if vr == "DT":
        return FieldKindValues.datetime
    return FieldKindValues.text


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A resolved field: its canonical name, kind and (for DICOM attributes) VR."""

    name: str
    kind: FieldKindValues
    vr: str | None = None


def _vr(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" or ")[0]


def field_vr(name: str) -> str | None:
    """The VR of a canonical field name's last component (None: derived or private)."""
    last = name.rsplit(".", 1)[-1]
    if _HEX_TAG.fullmatch(last):
        return _vr(int(last, 16))
    tag = tag_for_keyword(last)
    return None if tag is None else _vr(int(tag))


def component_name(tag: int) -> str:
    """The canonical name of one path component: its keyword, else its hex tag."""
    return keyword_for_tag(tag) or f"{tag:08X}"


def _component(part: str, field: str) -> int:
    if _HEX_TAG.fullmatch(part):
        return int(part, 16)
    tag = tag_for_keyword(part)
    if tag is None:
        raise InvalidInput(
            f"unknown field {field!r}: {part!r} is neither a DICOM keyword, an 8-digit hex tag "
            "nor a derived field"
        )
    return int(tag)


def resolve_field(field: object, derived: dict[str, FieldKindValues]) -> FieldRef:
    """``field`` as a ``FieldRef``; ``InvalidInput`` names an unknown field or a bad path."""
    if not isinstance(field, str) or not field.strip():
        raise InvalidInput(f"a field must be a non-empty string, got {field!r}")
    name = field.strip()
    if name == TAGS_FIELD:
        return FieldRef(name, FieldKindValues.tag)
    if name in derived:
        return FieldRef(name, derived[name])
    family = f"{name.split('.', 1)[0]}.*"
    if "." in name and family in derived:  # a feature family's field (``radiomics.lungs.x``)
        return FieldRef(name, derived[family])
    parts = name.split(".")
    tags = [_component(part, name) for part in parts]
    for part, tag in zip(parts[:-1], tags[:-1], strict=True):
        vr = _vr(tag)
        if vr is not None and vr != "SQ":
            raise InvalidInput(f"field {name!r}: {part!r} is not a sequence (VR {vr})")
    vr = _vr(tags[-1])
    if vr == "SQ":
        raise InvalidInput(
            f"field {name!r} is a sequence; name an attribute inside it, e.g. {name}.CodeValue"
        )
    if vr in SKIPPED_VRS:
        raise InvalidInput(f"field {name!r} holds binary data (VR {vr}) and is not searchable")
    canonical = ".".join(component_name(tag) for tag in tags)
    return FieldRef(canonical, kind_of_vr(vr), vr)


__all__ = [
    "SKIPPED_VRS",
    "TAGS_FIELD",
    "FieldKindValues",
    "FieldRef",
    "component_name",
    "field_vr",
    "kind_of_vr",
    "resolve_field",
]
