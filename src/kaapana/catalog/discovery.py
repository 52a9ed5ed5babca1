"""Which fields a project's series have, and the values of one field (for autocomplete)."""

import re
from typing import Any, Final

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from kaapana.catalog.derived import DERIVED_FIELDS, derived_kinds, family_of
from kaapana.catalog.fields import FieldKindValues, field_vr, kind_of_vr, resolve_field
from kaapana.catalog.filters import like_pattern
from kaapana.db.models import CatalogGeneration, SeriesAttribute, SeriesProject, SeriesTag

MAX_VALUES: Final = 1000


class FieldInfo(BaseModel):
    """A field present in the project: its VR (DICOM attributes), kind, and how many series
    have it; ``examples`` are its smallest and largest value."""

    field: str
    vr: str | None
    kind: FieldKindValues
    derived: bool
    description: str | None
    series: int
    examples: list[str | float]


class ValueCount(BaseModel):
    value: str | float
    count: int


def _project_series(project_pk: int) -> Select[tuple[int]]:
    return select(SeriesProject.series_pk).where(SeriesProject.project_pk == project_pk)


def _index_state(session: Session, project_pk: int) -> tuple[int, ...]:
    """What a project's field list derives from: the index's generation (every indexing
    transaction counts it up) and the project's series (a link added, or a series deleted,
    changes their number or the sum of their pks)."""
    links = (
        select(func.count(), func.coalesce(func.sum(SeriesProject.series_pk), 0))
        .where(SeriesProject.project_pk == project_pk)
        .subquery()
    )
    generation = select(CatalogGeneration.value).where(CatalogGeneration.id == 1)
    row = session.execute(select(generation.scalar_subquery(), *links.c)).one()
    return tuple(int(value or 0) for value in row)


class FieldLists:
    """The attribute fields of each project, derived once per state of the index.

    Deriving them reads every row of the project's series (seconds for 10,000 series), while
    the list changes only when the index is written or the project's series change; the
    gallery asks for it on every visit.
    """

    def __init__(self) -> None:
        self._lists: dict[int, tuple[tuple[int, ...], list[FieldInfo]]] = {}

    def get(self, session: Session, project_pk: int) -> list[FieldInfo]:
        state = _index_state(session, project_pk)
        kept = self._lists.get(project_pk)
        if kept is not None and kept[0] == state:
            return kept[1]
        found = _attribute_fields(session, project_pk)
        self._lists[project_pk] = (state, found)
        return found


def _name_matcher(prefix: str) -> re.Pattern[str]:
    """A name prefix as the query filter reads it: case-insensitive, ``*`` and ``?`` wild."""
    wild = {"*": ".*", "?": "."}
    return re.compile("".join(wild.get(c, re.escape(c)) for c in prefix.lower()), re.DOTALL)


def fields(
    session: Session, *, project_pk: int, prefix: str = "", lists: FieldLists | None = None
) -> list[FieldInfo]:
    """Every field with at least one value in the project (name-prefix filtered), by name."""
    prefix = prefix.replace("\x00", "")
    every = (lists or FieldLists()).get(session, project_pk)
    matcher = _name_matcher(prefix)
    found = [info for info in every if matcher.match(info.field.lower())]
    tagged = session.scalar(
        select(func.count(func.distinct(SeriesTag.series_pk))).where(
            SeriesTag.project_pk == project_pk
        )
    )
    if tagged and (not prefix or "tags".startswith(prefix.lower())):
        found.append(
            FieldInfo(
                field="tags",
                vr=None,
                kind=FieldKindValues.tag,
                derived=False,
                description="The project's tags on the series.",
                series=tagged,
                examples=[],
            )
        )
    return found


def _attribute_fields(session: Session, project_pk: int) -> list[FieldInfo]:
    a = SeriesAttribute
    statement = (
        select(
            a.field,
            func.count(func.distinct(a.series_pk)),
            func.count(a.number_value),
            func.min(a.text_value),
            func.max(a.text_value),
            func.min(a.number_value),
            func.max(a.number_value),
        )
        .where(a.series_pk.in_(_project_series(project_pk)))
        .group_by(a.field)
        .order_by(a.field)
    )
    found = []
    for name, series, numbers, low_text, high_text, low, high in session.execute(statement):
        derived = DERIVED_FIELDS.get(name) or family_of(name)
        vr = None if derived else field_vr(name)
        kind = derived.kind if derived else kind_of_vr(vr)
        if kind is FieldKindValues.unknown:
            kind = FieldKindValues.number if numbers else FieldKindValues.text
        examples: list[Any] = (
            [low, high] if kind is FieldKindValues.number else [low_text, high_text]
        )
        found.append(
            FieldInfo(
                field=name,
                vr=vr,
                kind=kind,
                derived=derived is not None,
                description=derived.description if derived else None,
                series=series,
                examples=list(dict.fromkeys(e for e in examples if e is not None)),
            )
        )
    return found


def values(
    session: Session, *, project_pk: int, field: str, prefix: str = "", limit: int = 20
) -> list[ValueCount]:
    """The most frequent values of ``field`` starting with ``prefix`` (case-insensitive)."""
    ref = resolve_field(field, derived_kinds())
    limit = max(1, min(limit, MAX_VALUES))
    prefix = prefix.replace("\x00", "")
    counted = func.count().label("n")
    if ref.kind is FieldKindValues.tag:
        column: Any = SeriesTag.tag
        where: list[Any] = [SeriesTag.project_pk == project_pk]
    else:
        column = SeriesAttribute.text_value
        where = [
            SeriesAttribute.field == ref.name,
            SeriesAttribute.series_pk.in_(_project_series(project_pk)),
        ]
    if prefix:
        where.append(func.lower(column).like(like_pattern(prefix) + "%", escape="\\"))
    rows = session.execute(
        select(column, counted)
        .where(*where)
        .group_by(column)
        .order_by(counted.desc(), column)
        .limit(limit)
    )
    return [ValueCount(value=value, count=count) for value, count in rows]


__all__ = ["FieldInfo", "FieldLists", "ValueCount", "fields", "values"]
