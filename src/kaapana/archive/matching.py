"""Attribute matching of PS3.4 C.2.2.2, written once and applied twice.

A key's value is parsed into a ``Condition`` (a list of alternatives, any of which may match);
``sql_clause`` turns it into SQL for index columns, ``json_matches`` applies the same rules to the
precomputed DICOM JSON for every other attribute, after SQL has narrowed the candidates.

Rules kept from the standard: an empty value or a lone ``*`` is universal matching; ``*`` and ``?``
are wildcards (not for UI, dates, times or numbers); ``a-b``, ``-b`` and ``a-`` are range matching
for DA, TM and DT; a UI value list (``uid1\\uid2``) matches any of its UIDs. Matching is
case-sensitive except for PN, where PS3.4 lets us ignore case (people type names as they like).
Two deliberate extensions: a value list of any other VR also means "any of these" (SCUs send
``CT\\MR``), and an upper range bound matches everything it is a prefix of, so ``-2020`` takes all
of 2020 and ``-1200`` all of 12:00-12:00:59.999999. An empty stored value never matches a range.
"""

import re
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import ColumnElement, Integer, and_, false, or_

ESCAPE = "\\"
_DATE_TIME_VRS = frozenset({"DA", "TM", "DT"})
_NUMERIC_VRS = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "SV", "UV", "FL", "FD"})
_NO_WILDCARD_VRS = _DATE_TIME_VRS | _NUMERIC_VRS | {"UI"}
# Values we cannot compare (binary, attribute tags): accepted as return keys, matched universally.
_UNMATCHABLE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "AT"})
_DT_RANGE = re.compile(r"^([0-9.]*)-([0-9.]*)$")


@dataclass(frozen=True, slots=True)
class Equal:
    value: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    pattern: str


@dataclass(frozen=True, slots=True)
class Range:
    """``low``/``high`` empty means open on that side."""

    low: str
    high: str


Alternative = Equal | Wildcard | Range


@dataclass(frozen=True, slots=True)
class Condition:
    vr: str
    alternatives: tuple[Alternative, ...]

    @property
    def case_insensitive(self) -> bool:
        return self.vr == "PN"


def _normalise(value: str, vr: str) -> str:
    """Trailing spaces are insignificant; so are empty trailing PN components and groups."""
    text = value.strip()
    return text.rstrip("^=") if vr == "PN" else text


def query_values(element: DataElement) -> list[str]:
    """The non-empty values of a key as strings (value lists split, trailing padding dropped)."""
    value = element.value
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    texts = (_normalise(str(item), element.VR) for item in items if item is not None)
    return [text for text in texts if text]


def _alternative(value: str, vr: str) -> Alternative | None:
    """One value's meaning; ``None`` for universal matching."""
    if value == "*":
        return None
    if vr in ("DA", "TM") and "-" in value:
        low, high = value.split("-", 1)
        return Range(low.strip(), high.strip())
    if vr == "DT" and (found := _DT_RANGE.match(value)):
        low, high = found.groups()
        # "YYYYMMDDHH...-ZZXX" is one date time with a UTC offset, not a range.
        if not (len(high) == 4 and len(low) >= 10):
            return Range(low, high)
    if vr not in _NO_WILDCARD_VRS and ("*" in value or "?" in value):
        return Wildcard(value)
    return Equal(value)


def parse_condition(element: DataElement) -> Condition | None:
    """The condition a key imposes, or ``None`` when it matches everything (a return key only)."""
    if element.VR in _UNMATCHABLE_VRS:
        return None
    alternatives = []
    for value in query_values(element):
        alternative = _alternative(value, element.VR)
        if alternative is None:
            return None
        alternatives.append(alternative)
    return Condition(element.VR, tuple(alternatives)) if alternatives else None


def _like_literal(value: str) -> str:
    """``value`` with LIKE's own wildcards (and the escape character) escaped."""
    return value.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _like_pattern(pattern: str) -> str:
    return _like_literal(pattern).replace("*", "%").replace("?", "_")


def _glob_pattern(pattern: str) -> str:
    # GLOB's only other special character is '['; '[[]' is a literal '['.
    return pattern.replace("[", "[[]")


def _after_prefix(value: str) -> str:
    """The smallest string above every string that starts with ``value``."""
    return value[:-1] + chr(ord(value[-1]) + 1)


def _string_clause(
    alternative: Alternative, column: Any, *, case_insensitive: bool, dialect: str
) -> ColumnElement[bool]:
    if isinstance(alternative, Range):
        bounds = [column != ""]
        if alternative.low:
            bounds.append(column >= alternative.low)
        if alternative.high:
            bounds.append(column < _after_prefix(alternative.high))
        return and_(*bounds)
    if isinstance(alternative, Wildcard):
        if case_insensitive:
            return column.ilike(_like_pattern(alternative.pattern), escape=ESCAPE)
        if dialect == "sqlite":  # SQLite's LIKE ignores ASCII case; GLOB does not
            return column.op("GLOB")(_glob_pattern(alternative.pattern))
        return column.like(_like_pattern(alternative.pattern), escape=ESCAPE)
    if case_insensitive:
        return column.ilike(_like_literal(alternative.value), escape=ESCAPE)
    return column == alternative.value


def _integer_clause(alternative: Alternative, column: Any) -> ColumnElement[bool]:
    """IS keys take neither wildcards nor ranges; a value that is no number matches nothing."""
    if not isinstance(alternative, Equal):
        return false()
    try:
        return column == int(alternative.value)
    except ValueError:
        return false()


def sql_clause(condition: Condition, column: Any, *, dialect: str) -> ColumnElement[bool]:
    """``condition`` on an index column; ``dialect`` picks the case-sensitive wildcard operator."""
    if isinstance(column.type, Integer):
        return or_(*(_integer_clause(alt, column) for alt in condition.alternatives))
    equal = [alt.value for alt in condition.alternatives if isinstance(alt, Equal)]
    # A value list compares as one IN (an index lookup per UID), the other alternatives one by one.
    grouped = len(equal) > 1 and not condition.case_insensitive
    clauses = [column.in_(equal)] if grouped else []
    clauses.extend(
        _string_clause(alt, column, case_insensitive=condition.case_insensitive, dialect=dialect)
        for alt in condition.alternatives
        if not (grouped and isinstance(alt, Equal))
    )
    return or_(*clauses)


def _person_name(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    groups = (value.get("Alphabetic", ""), value.get("Ideographic", ""), value.get("Phonetic", ""))
    return _normalise("=".join(groups), "PN")


def _json_strings(element: dict[str, Any] | None) -> list[str]:
    """The values of one DICOM JSON element as the strings a query compares with."""
    if not element:
        return []
    values = element.get("Value") or []
    if element.get("vr") == "PN":
        return [_person_name(value) for value in values if value is not None]
    return [
        str(value).strip() for value in values if value is not None and not isinstance(value, dict)
    ]


def _wildcard_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(body, re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _value_matches(alternative: Alternative, stored: str, condition: Condition) -> bool:
    if isinstance(alternative, Range):
        return (
            bool(stored)
            and (not alternative.low or stored >= alternative.low)
            and (not alternative.high or stored < _after_prefix(alternative.high))
        )
    if isinstance(alternative, Wildcard):
        regex = _wildcard_regex(alternative.pattern, condition.case_insensitive)
        return regex.fullmatch(stored) is not None
    if condition.vr in _NUMERIC_VRS:
        try:
            return float(stored) == float(alternative.value)
        except ValueError:
            return False
    if condition.case_insensitive:
        return stored.casefold() == alternative.value.casefold()
    return stored == alternative.value


def json_matches(condition: Condition, element: dict[str, Any] | None) -> bool:
    """``condition`` on a stored JSON element: true if any stored value meets any alternative."""
    stored = _json_strings(element)
    return any(
        _value_matches(alternative, value, condition)
        for alternative in condition.alternatives
        for value in stored
    )


def _item_keys(item: Dataset) -> list[DataElement]:
    return [element for element in item if element.tag.element != 0]


def _is_universal(item: Dataset) -> bool:
    """True when a query item asks for attributes without constraining any."""
    for element in _item_keys(item):
        if element.VR == "SQ":
            if element.value and not _is_universal(element.value[0]):
                return False
        elif parse_condition(element) is not None:
            return False
    return True


def _item_matches(query: Dataset, stored: dict[str, Any]) -> bool:
    """One stored sequence item against one query item: each of its keys must match (C.2.2.2.6)."""
    for element in _item_keys(query):
        tag = f"{element.tag:08X}"
        if element.VR == "SQ":
            if sequence_matches(element, stored.get(tag)) is None:
                return False
            continue
        condition = parse_condition(element)
        if condition is not None and not json_matches(condition, stored.get(tag)):
            return False
    return True


def sequence_matches(element: DataElement, stored: dict[str, Any] | None) -> list[Any] | None:
    """The stored items a sequence key matches, or ``None`` for no match.

    A key without items, or whose item constrains nothing, is universal matching (every stored
    item, possibly none); otherwise at least one stored item must match the query's first item.
    """
    items: list[Any] = list((stored or {}).get("Value") or [])
    query_items: list[Dataset] = list(element.value or [])
    if not query_items or _is_universal(query_items[0]):
        return items
    found = [
        item for item in items if isinstance(item, dict) and _item_matches(query_items[0], item)
    ]
    return found or None


__all__ = [
    "ESCAPE",
    "Alternative",
    "Condition",
    "Equal",
    "Range",
    "Wildcard",
    "json_matches",
    "parse_condition",
    "query_values",
    "sequence_matches",
    "sql_clause",
]
