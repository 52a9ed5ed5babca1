"""Flattening DICOM JSON (PS3.18 F.2) into typed catalog values, one per distinct value.

Sequence items contribute under dotted paths (``ReferencedSeriesSequence.SeriesInstanceUID``),
person names under their alphabetic form, numbers as numbers. Binary elements are skipped, a
text longer than ``MAX_TEXT`` is cut, and a field keeps at most ``MAX_VALUES_PER_FIELD`` distinct
values: a per-frame functional group with thousands of frame positions is no search criterion,
and would otherwise multiply the index.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from kaapana.catalog.fields import SKIPPED_VRS, FieldKindValues, component_name, kind_of_vr

log = logging.getLogger(__name__)

MAX_TEXT: Final = 1024
MAX_VALUES_PER_FIELD: Final = 64
Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One row of ``series_attributes``; numbers keep their text form too (for facets)."""

    field: str
    text_value: str
    number_value: float | None = None


def number_text(value: float) -> str:
    """``2.5`` -> "2.5", ``3.0`` -> "3": how a DICOM DS or IS reads."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def clean_text(value: str) -> str:
    return value.replace("\x00", "").strip()[:MAX_TEXT]


def typed_value(field: str, kind: FieldKindValues, value: object) -> FieldValue | None:
    """A catalog value of ``field`` from one raw value, None when it has nothing to say."""
    if isinstance(value, bool):
        value = str(value)
    if kind is FieldKindValues.number and isinstance(value, int | float):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            return None
        return FieldValue(field, number_text(number), number)
    if isinstance(value, dict):  # a person name
        value = value.get("Alphabetic", "")
    if isinstance(value, int | float):
        value = number_text(float(value))
    if not isinstance(value, str):
        return None
    text = clean_text(value)
    if kind in (FieldKindValues.date, FieldKindValues.datetime):
        text = "".join(ch for ch in text if ch.isdigit())
    return FieldValue(field, text) if text else None


def _walk(document: Document, prefix: str) -> Iterator[FieldValue]:
    for tag, element in document.items():
        if not isinstance(element, dict):
            continue
        vr = element.get("vr")
        if vr in SKIPPED_VRS:
            continue
        try:
            name = prefix + component_name(int(tag, 16))
        except ValueError:
            continue
        values = element.get("Value") or []
        if vr == "SQ":
            for item in values:
                if isinstance(item, dict):
                    yield from _walk(item, name + ".")
            continue
        kind = kind_of_vr(vr)
        for value in values:
            typed = typed_value(name, kind, value)
            if typed is not None:
                yield typed


def distinct_values(values: Iterable[FieldValue]) -> list[FieldValue]:
    """``values`` without repeats, at most ``MAX_VALUES_PER_FIELD`` per field, in first order."""
    seen: set[FieldValue] = set()
    per_field: dict[str, int] = {}
    kept = []
    for value in values:
        if value in seen:
            continue
        count = per_field.get(value.field, 0)
        if count == MAX_VALUES_PER_FIELD:
            log.debug("field %s: more than %d values, the rest left out", value.field, count)
            continue
        per_field[value.field] = count + 1
        seen.add(value)
        kept.append(value)
    return kept


def flatten(document: Document) -> list[FieldValue]:
    """Every searchable value of a DICOM JSON document."""
    return distinct_values(_walk(document, ""))


__all__ = [
    "MAX_TEXT",
    "MAX_VALUES_PER_FIELD",
    "Document",
    "FieldValue",
    "clean_text",
    "distinct_values",
    "flatten",
    "number_text",
    "typed_value",
]
