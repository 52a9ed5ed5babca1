"""Which fields a project's series have, and the values of one field (for autocomplete)."""

from typing import Any, Final

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from kaapana.catalog.derived import DERIVED_FIELDS, derived_kinds, family_of
from kaapana.catalog.fields import FieldKindValues, field_vr, kind_of_vr, resolve_field
from kaapana.catalog.filters import like_pattern
from kaapana.db.models import SeriesAttribute, SeriesProject, SeriesTag

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


def fields(session: Session, *, project_pk: int, prefix: str = "") -> list[FieldInfo]:
    """Every field with at least one value in the project (name-prefix filtered), by name."""
    a = SeriesAttribute
    prefix = prefix.replace("\x00", "")
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
    if prefix:
        statement = statement.where(
            func.lower(a.field).like(like_pattern(prefix) + "%", escape="\\")
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


__all__ = ["FieldInfo", "ValueCount", "fields", "values"]
