"""Reading attributes out of the stored DICOM JSON (PS3.18 F.2) by keyword.

The catalog answers from the JSON that ingest precomputed, so it never opens a stored file for
geometry, references or completeness.
"""

from collections.abc import Mapping
from functools import cache
from typing import Any

from pydicom.datadict import tag_for_keyword

DicomJson = Mapping[str, Any]


@cache
def _tag(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"'keyword' must be a DICOM keyword, got {keyword!r}")
    return f"{tag:08X}"


def json_values(element_map: DicomJson, keyword: str) -> list[Any]:
    """The values of ``keyword`` (empty when absent or empty)."""
    element = element_map.get(_tag(keyword))
    if not isinstance(element, Mapping):
        return []
    values = element.get("Value")
    return list(values) if isinstance(values, list) else []


def json_items(element_map: DicomJson, keyword: str) -> list[DicomJson]:
    """The items of the sequence ``keyword`` (empty when absent or not a sequence)."""
    return [item for item in json_values(element_map, keyword) if isinstance(item, Mapping)]


def json_numbers(element_map: DicomJson, keyword: str) -> tuple[float, ...] | None:
    """The numeric values of ``keyword``, or None when absent or not all numbers."""
    values = json_values(element_map, keyword)
    try:
        numbers = tuple(float(value) for value in values)
    except (TypeError, ValueError):
        return None
    return numbers or None


__all__ = ["DicomJson", "json_items", "json_numbers", "json_values"]
