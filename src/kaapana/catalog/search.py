"""Searching series: the project-scoped selection, sort keys and stable cursor paging.

The cursor is opaque to callers: the sort values of the last series on the page and its pk,
with a fingerprint of the sort it belongs to. The next page starts strictly after that
position (keyset paging), so pages neither repeat nor skip series, also where many series share
a sort value (the pk breaks ties) and while new series arrive.
"""

import base64
import binascii
import hashlib
import json
from typing import Any, Final

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import QueryableAttribute, Session

from kaapana.archive.attributes import INDEX_COLUMNS, QueryRetrieveLevelValues
from kaapana.catalog.fields import FieldKindValues
from kaapana.catalog.filters import FilterCompiler
from kaapana.catalog.query import CatalogQuery, SortKey, SortOrderValues
from kaapana.db.models import Patient, Series, SeriesAttribute, SeriesProject, SeriesTag, Study
from kaapana.errors import InvalidInput

MAX_LIMIT: Final = 1000
# What a missing sort value counts as: before every value ascending, after every one descending.
_NO_TEXT: Final = ""
_NO_NUMBER: Final = -1e300
_SORTABLE_LEVELS: Final = frozenset(
    {
        QueryRetrieveLevelValues.PATIENT,
        QueryRetrieveLevelValues.STUDY,
        QueryRetrieveLevelValues.SERIES,
    }
)


class SeriesHit(BaseModel):
    """A series found, with the main attributes of its study and patient."""

    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    series_date: str
    number_of_series_related_instances: int
    study_instance_uid: str
    study_date: str
    study_description: str
    accession_number: str
    patient_id: str
    patient_name: str
    patient_sex: str
    patient_birth_date: str
    tags: list[str]


class SearchPage(BaseModel):
    items: list[SeriesHit]
    next_cursor: str | None


def scoped_filters(
    query: CatalogQuery,
    *,
    subject: QueryableAttribute[int],
    project_pk: int,
    dialect: str,
    session: Session | None = None,
) -> list[ColumnElement[bool]]:
    compiler = FilterCompiler(
        subject=subject, project_pk=project_pk, dialect=dialect, session=session
    )
    clauses = []
    if query.where is not None:
        clauses.append(compiler.node(query.where))
    if query.text is not None:
        clauses.append(compiler.text(query.text))
    return clauses


def select_series(
    *, project_pk: int, query: CatalogQuery, dialect: str, session: Session | None = None
) -> Select[tuple[int]]:
    """``series.id`` of the project's series that match, for use as a subquery; with a session,
    the most selective condition of an AND is found first and drives the query."""
    subject = SeriesProject.series_pk
    filters = scoped_filters(
        query, subject=subject, project_pk=project_pk, dialect=dialect, session=session
    )
    return select(subject).where(SeriesProject.project_pk == project_pk, *filters)


def _sort_level(key: SortKey) -> QueryRetrieveLevelValues | None:
    """The level of the index column ``key`` sorts on, None where it sorts on attribute rows."""
    indexed = INDEX_COLUMNS.get(key.field.name)
    if indexed is not None and indexed.level in _SORTABLE_LEVELS:
        return indexed.level
    return None


def _key(key: SortKey) -> ColumnElement[Any]:
    """The sort expression of ``key``: an index column where there is one, else the first
    (ascending) or last (descending) of the series' values."""
    numeric = key.field.kind is FieldKindValues.number
    missing = _NO_NUMBER if numeric else _NO_TEXT
    if _sort_level(key) is not None:
        indexed = INDEX_COLUMNS[key.field.name].column
        # A column without NULLs is sorted as it is, so that its index can give the order.
        return func.coalesce(indexed, missing) if indexed.expression.nullable else indexed
    column = SeriesAttribute.number_value if numeric else SeriesAttribute.text_value
    pick = func.max if key.order is SortOrderValues.desc else func.min
    value = (
        select(pick(column))
        .where(SeriesAttribute.series_pk == Series.id, SeriesAttribute.field == key.field.name)
        .scalar_subquery()
    )
    return func.coalesce(value, missing)


def _fingerprint(query: CatalogQuery) -> str:
    sort = [(key.field.name, key.order.value) for key in query.sort]
    return hashlib.sha256(json.dumps(sort).encode()).hexdigest()[:12]


def encode_cursor(query: CatalogQuery, values: list[Any], pk: int) -> str:
    raw = json.dumps({"s": _fingerprint(query), "v": values, "pk": pk}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(query: CatalogQuery, cursor: str) -> tuple[list[Any], int]:
    invalid = InvalidInput(f"cursor: {cursor[:40]!r} is not a cursor of this query's sort")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid from exc
    if (
        not isinstance(data, dict)
        or data.get("s") != _fingerprint(query)
        or not isinstance(data.get("pk"), int)
        or not isinstance(data.get("v"), list)
        or len(data["v"]) != len(query.sort)
        or not all(
            isinstance(v, int | float) or (isinstance(v, str) and "\x00" not in v)
            for v in data["v"]
        )
    ):
        raise invalid
    return data["v"], data["pk"]


def _after(
    keys: list[tuple[ColumnElement[Any], bool]], values: list[Any], pk: int
) -> ColumnElement[bool]:
    """Rows strictly after (values, pk) in the order of ``keys`` ((expression, descending))."""
    position = [*zip([k for k, _ in keys], values, strict=True), (Series.id, pk)]
    descending = [d for _, d in keys] + [keys[-1][1] if keys else True]
    alternatives = []
    for index, (expression, value) in enumerate(position):
        beyond = expression < value if descending[index] else expression > value
        alternatives.append(and_(*(e == v for e, v in position[:index]), beyond))
    return or_(*alternatives)


def search(
    session: Session,
    *,
    project_pk: int,
    query: CatalogQuery,
    dialect: str,
    limit: int = 50,
    cursor: str | None = None,
) -> SearchPage:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: must be between 1 and {MAX_LIMIT}, got {limit}")
    keys = [(_key(key), key.order is SortOrderValues.desc) for key in query.sort]
    # Only pks and sort values go through the sort; the page's rows are read afterwards.
    statement = (
        select(Series.id, *(expression for expression, _ in keys))
        .join(
            SeriesProject,
            and_(SeriesProject.series_pk == Series.id, SeriesProject.project_pk == project_pk),
        )
        .where(
            *scoped_filters(
                query, subject=Series.id, project_pk=project_pk, dialect=dialect, session=session
            )
        )
    )
    # Studies and patients are joined only for a sort on their columns: every further table
    # in the join costs PostgreSQL's planner more time than the short page it plans for.
    levels = {_sort_level(key) for key in query.sort}
    if levels & {QueryRetrieveLevelValues.STUDY, QueryRetrieveLevelValues.PATIENT}:
        statement = statement.join(Study, Series.study_pk == Study.id)
    if QueryRetrieveLevelValues.PATIENT in levels:
        statement = statement.join(Patient, Study.patient_pk == Patient.id)
    if cursor:
        values, pk = decode_cursor(query, cursor)
        statement = statement.where(_after(keys, values, pk))
    id_descending = keys[-1][1] if keys else True
    order = [e.desc() if d else e.asc() for e, d in keys]
    order.append(Series.id.desc() if id_descending else Series.id.asc())
    rows = session.execute(statement.order_by(*order).limit(limit + 1)).all()
    page, more = rows[:limit], len(rows) > limit
    pks = [row[0] for row in page]
    details = {
        series.id: (series, study, patient)
        for series, study, patient in session.execute(
            select(Series, Study, Patient)
            .join(Study, Series.study_pk == Study.id)
            .join(Patient, Study.patient_pk == Patient.id)
            .where(Series.id.in_(pks))
        )
    }
    tags = _tags(session, project_pk, pks)
    items = [_hit(*details[pk], tags.get(pk, [])) for pk in pks]
    next_cursor = None
    if more and page:
        last = page[-1]
        next_cursor = encode_cursor(query, list(last[1:]), last[0])
    return SearchPage(items=items, next_cursor=next_cursor)


def _tags(session: Session, project_pk: int, series_pks: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    if not series_pks:
        return found
    rows = session.execute(
        select(SeriesTag.series_pk, SeriesTag.tag)
        .where(SeriesTag.project_pk == project_pk, SeriesTag.series_pk.in_(series_pks))
        .order_by(SeriesTag.tag)
    )
    for series_pk, tag in rows:
        found.setdefault(series_pk, []).append(tag)
    return found


def _hit(series: Series, study: Study, patient: Patient, tags: list[str]) -> SeriesHit:
    return SeriesHit(
        series_instance_uid=series.series_instance_uid,
        modality=series.modality,
        series_number=series.series_number,
        series_description=series.series_description,
        body_part_examined=series.body_part_examined,
        series_date=series.series_date,
        number_of_series_related_instances=series.number_of_instances,
        study_instance_uid=study.study_instance_uid,
        study_date=study.study_date,
        study_description=study.study_description,
        accession_number=study.accession_number,
        patient_id=patient.patient_id,
        patient_name=patient.patient_name,
        patient_sex=patient.patient_sex,
        patient_birth_date=patient.patient_birth_date,
        tags=tags,
    )


__all__ = ["SearchPage", "SeriesHit", "decode_cursor", "encode_cursor", "search", "select_series"]
