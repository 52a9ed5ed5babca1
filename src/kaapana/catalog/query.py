"""The catalog's one query format, shared by REST, the CLI, dataset queries and workflow inputs.

``{"where": <node>, "text": "...", "sort": [{"field": ..., "order": "asc"|"desc"}]}`` where a
node is ``{"and": [...]}``, ``{"or": [...]}``, ``{"not": <node>}`` or a condition
``{"field": ..., "op": ..., "value": ...}``. ``parse_query`` checks everything (fields, operators,
value types) before any SQL exists, and says where a problem is (``where.and[1].value``).
Values are normalised here once: dates to DICOM digits, NUL characters dropped (the index
stores none).
"""

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from kaapana.catalog.derived import derived_kinds
from kaapana.catalog.fields import FieldKindValues, FieldRef, resolve_field
from kaapana.errors import InvalidInput, InvalidJson

MAX_NODES: Final = 200
MAX_IN_VALUES: Final = 1000
MAX_SORT_KEYS: Final = 4
_K = FieldKindValues


class OperatorValues(StrEnum):
    eq = "="
    ne = "!="
    lt = "<"
    le = "<="
    gt = ">"
    ge = ">="
    range = "range"
    in_ = "in"
    wildcard = "wildcard"
    exists = "exists"


class SortOrderValues(StrEnum):
    asc = "asc"
    desc = "desc"


_ORDERING: Final = frozenset({"<", "<=", ">", ">=", "range"})
_TAG_OPERATORS: Final = frozenset({"=", "!=", "in", "wildcard", "exists"})
_DATE = re.compile(r"\d{4}(-?\d{2}(-?\d{2})?)?")
_DATETIME = re.compile(r"\d{4}(-?\d{2}(-?\d{2}([T ]?\d{2}(:?\d{2}(:?\d{2})?)?)?)?)?")


@dataclass(frozen=True, slots=True)
class Condition:
    field: FieldRef
    op: OperatorValues
    # text or number; a (low, high) pair for range (either None), a tuple for in, bool for exists
    value: Any
    # the kind the value compares as: the field's, or the value's for fields of unknown kind
    kind: FieldKindValues


@dataclass(frozen=True, slots=True)
class And:
    children: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: "Node"


Node = Condition | And | Or | Not


@dataclass(frozen=True, slots=True)
class SortKey:
    field: FieldRef
    order: SortOrderValues


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    """A checked query; ``CatalogQuery()`` matches every series of the project."""

    where: Node | None = None
    text: str | None = None
    sort: tuple[SortKey, ...] = field(default_factory=tuple)

    def fields(self) -> set[str]:
        """Every field the query names (conditions and sort keys)."""
        names = {key.field.name for key in self.sort}
        pending = [self.where] if self.where is not None else []
        while pending:
            node = pending.pop()
            if isinstance(node, Condition):
                names.add(node.field.name)
            elif isinstance(node, Not):
                pending.append(node.child)
            else:
                pending.extend(node.children)
        return names


def load_json_text(text: str, *, what: str = "query") -> Any:
    """``text`` as JSON; ``InvalidJson`` with line and column where it is not."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJson(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc


def _expect_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )


def _number(value: Any, ref: FieldRef, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"{where}: field {ref.name!r} holds numbers, got {value!r}; write it without quotes"
        )
    return float(value)


def _text(value: Any, ref: FieldRef, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: field {ref.name!r} holds text, got {value!r}; quote it")
    return value.replace("\x00", "")


def _moment(value: Any, ref: FieldRef, kind: FieldKindValues, where: str) -> str:
    pattern, example = (_DATE, "2023-05-17") if kind is _K.date else (_DATETIME, "2023-05-17T08:30")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise InvalidInput(
            f"{where}: field {ref.name!r} holds {kind.value}s; write e.g. {example!r}, "
            f"or a prefix of it such as '2023', got {value!r}"
        )
    return "".join(ch for ch in value if ch.isdigit())


def _scalar(value: Any, ref: FieldRef, kind: FieldKindValues, where: str) -> Any:
    if kind is _K.number:
        return _number(value, ref, where)
    if kind in (_K.date, _K.datetime):
        return _moment(value, ref, kind, where)
    return _text(value, ref, where)


def _value_kind(ref: FieldRef, value: Any) -> FieldKindValues:
    """Private tags take the kind of the value they are compared with."""
    if ref.kind is not _K.unknown:
        return ref.kind
    sample = value[0] if isinstance(value, list) and value else value
    if isinstance(sample, int | float) and not isinstance(sample, bool):
        return _K.number
    return _K.text


def _condition(obj: dict[str, Any], where: str) -> Condition:
    _expect_keys(obj, {"field", "op", "value"}, where)
    ref = resolve_field(obj.get("field"), derived_kinds())
    raw_op = obj.get("op", "=")
    try:
        op = OperatorValues(raw_op)
    except ValueError as exc:
        allowed = ", ".join(repr(o.value) for o in OperatorValues)
        raise InvalidInput(f"{where}.op: unknown operator {raw_op!r}; allowed: {allowed}") from exc
    value = obj.get("value")
    kind = _value_kind(ref, value)
    at = f"{where}.value"
    if ref.kind is _K.tag and op not in _TAG_OPERATORS:
        raise InvalidInput(
            f"{where}.op: tags take {', '.join(sorted(_TAG_OPERATORS))}, not {op.value!r}"
        )
    if op is OperatorValues.exists:
        if value is None:
            value = True
        if not isinstance(value, bool):
            raise InvalidInput(f"{at}: 'exists' takes true or false, got {value!r}")
        return Condition(ref, op, value, kind)
    if value is None:
        raise InvalidInput(f"{at}: operator {op.value!r} on {ref.name!r} needs a value")
    if op is OperatorValues.wildcard:
        if kind not in (_K.text, _K.tag):
            raise InvalidInput(
                f"{where}.op: 'wildcard' needs a text field; {ref.name!r} holds {kind.value}s"
            )
        return Condition(ref, op, _text(value, ref, at), kind)
    if op in _ORDERING and kind is _K.tag:
        raise InvalidInput(f"{where}.op: {op.value!r} does not apply to tags")
    if op is OperatorValues.range:
        if not isinstance(value, list) or len(value) != 2 or value == [None, None]:
            raise InvalidInput(
                f"{at}: 'range' takes [low, high] (either may be null), got {value!r}"
            )
        low, high = (None if v is None else _scalar(v, ref, kind, at) for v in value)
        return Condition(ref, op, (low, high), kind)
    if op is OperatorValues.in_:
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise InvalidInput(
                f"{at}: 'in' takes a list of 1 to {MAX_IN_VALUES} values, got {value!r:.80}"
            )
        return Condition(ref, op, tuple(_scalar(v, ref, kind, at) for v in value), kind)
    return Condition(ref, op, _scalar(value, ref, kind, at), kind)


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def node(self, obj: Any, where: str) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidInput(f"{where}: a query may have at most {MAX_NODES} conditions")
        if not isinstance(obj, dict):
            raise InvalidInput(
                f"{where}: expected an object (a condition or and/or/not), got {obj!r:.80}"
            )
        for group, cls in (("and", And), ("or", Or)):
            if group in obj:
                _expect_keys(obj, {group}, where)
                children = obj[group]
                if not isinstance(children, list) or not children:
                    raise InvalidInput(f"{where}.{group}: expected a non-empty list")
                at = f"{where}.{group}"
                return cls(tuple(self.node(c, f"{at}[{i}]") for i, c in enumerate(children)))
        if "not" in obj:
            _expect_keys(obj, {"not"}, where)
            return Not(self.node(obj["not"], f"{where}.not"))
        if "field" not in obj:
            raise InvalidInput(f"{where}: expected 'field' (a condition) or 'and', 'or', 'not'")
        return _condition(obj, where)


def _sort(obj: Any) -> tuple[SortKey, ...]:
    if not isinstance(obj, list) or len(obj) > MAX_SORT_KEYS:
        raise InvalidInput(
            f"sort: expected a list of at most {MAX_SORT_KEYS} keys, got {obj!r:.80}"
        )
    keys = []
    for index, item in enumerate(obj):
        where = f"sort[{index}]"
        if isinstance(item, str):
            item = {"field": item}
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: expected {{'field': ..., 'order': 'asc'|'desc'}}")
        _expect_keys(item, {"field", "order"}, where)
        ref = resolve_field(item.get("field"), derived_kinds())
        if ref.kind is _K.tag:
            raise InvalidInput(f"{where}: series cannot be sorted by tags")
        order = item.get("order", "asc")
        if order not in ("asc", "desc"):
            raise InvalidInput(f"{where}.order: expected 'asc' or 'desc', got {order!r}")
        keys.append(SortKey(ref, SortOrderValues(order)))
    return tuple(keys)


def parse_query(obj: Any) -> CatalogQuery:
    """A checked ``CatalogQuery`` from JSON (text or already parsed); None matches everything."""
    if isinstance(obj, str | bytes):
        obj = load_json_text(obj.decode() if isinstance(obj, bytes) else obj)
    if obj is None:
        return CatalogQuery()
    if isinstance(obj, CatalogQuery):
        return obj
    if not isinstance(obj, dict):
        raise InvalidInput(f"a query is a JSON object, got {obj!r:.80}")
    _expect_keys(obj, {"where", "text", "sort"}, "query")
    where = None if obj.get("where") is None else _Parser().node(obj["where"], "where")
    text = obj.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise InvalidInput(f"text: expected a string, got {text!r:.80}")
        text = text.replace("\x00", "").strip() or None
    sort = _sort(obj["sort"]) if obj.get("sort") is not None else ()
    return CatalogQuery(where=where, text=text, sort=sort)


_SHORTHAND = re.compile(r"\s*([^=!<>~?]+?)\s*(<=|>=|!=|=|<|>|~|\?)\s*(.*)", re.DOTALL)


def condition_from_shorthand(text: str) -> dict[str, Any]:
    """``Modality=CT``, ``SliceThickness<=1.5``, ``SeriesDescription~*liver*`` (wildcard),
    ``ImageComments?`` (exists) as a condition object; numbers for numeric fields."""
    match = _SHORTHAND.fullmatch(text)
    if match is None:
        raise InvalidInput(
            f"filter {text!r}: expected FIELD OP VALUE with OP one of = != < <= > >= ~ ?"
        )
    name, op, raw = match.groups()
    if op == "?":
        if raw.strip():
            raise InvalidInput(f"filter {text!r}: '?' (exists) takes no value")
        return {"field": name, "op": "exists", "value": True}
    ref = resolve_field(name, derived_kinds())
    value: Any = raw
    if ref.kind is _K.number or (ref.kind is _K.unknown and re.fullmatch(r"-?\d+(\.\d*)?", raw)):
        try:
            value = float(raw)
        except ValueError as exc:
            raise InvalidInput(f"filter {text!r}: {name!r} holds numbers, got {raw!r}") from exc
    return {"field": name, "op": "wildcard" if op == "~" else op, "value": value}


__all__ = [
    "And",
    "CatalogQuery",
    "Condition",
    "Node",
    "Not",
    "OperatorValues",
    "Or",
    "SortKey",
    "SortOrderValues",
    "condition_from_shorthand",
    "load_json_text",
    "parse_query",
]
