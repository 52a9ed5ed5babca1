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
from pydicom.datadict import dictionary_VM, tag_for_keyword
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from kaapana.archive.attributes import INDEX_COLUMNS, QueryRetrieveLevelValues
from kaapana.catalog.fields import FieldKindValues, FieldRef
from kaapana.catalog.filters import FilterCompiler, drivable, value_column, value_test
from kaapana.catalog.query import And, CatalogQuery, Condition, Node, SortKey, SortOrderValues
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
    driven: bool = False,
) -> list[ColumnElement[bool]]:
    compiler = FilterCompiler(
        subject=subject, project_pk=project_pk, dialect=dialect, session=session, driven=driven
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
    keys: list[tuple[ColumnElement[Any], bool]],
    values: list[Any],
    pk_column: ColumnElement[int],
    pk: int,
) -> ColumnElement[bool]:
    """Rows strictly after (values, pk) in the order of ``keys`` ((expression, descending))."""
    position = [*zip([k for k, _ in keys], values, strict=True), (pk_column, pk)]
    descending = [d for _, d in keys] + [keys[-1][1] if keys else True]
    alternatives = []
    for index, (expression, value) in enumerate(position):
        beyond = expression < value if descending[index] else expression > value
        alternatives.append(and_(*(e == v for e, v in position[:index]), beyond))
    return or_(*alternatives)


def _single_valued(field: FieldRef) -> bool:
    """A top-level attribute of value multiplicity 1: one attribute row per series."""
    if field.vr is None or "." in field.name:
        return False
    tag = tag_for_keyword(field.name)
    return tag is not None and dictionary_VM(tag) == "1"


def _sort_driver(query: CatalogQuery, compiler: FilterCompiler) -> Condition | None:
    """A condition on the one sort field that may drive the search in sort order.

    Walking that field's index in order and probing the other conditions per series yields a
    page without sorting every match; it pays where the condition is the most selective of the
    AND (the others are counted only up to its count), else the usual plan is better.
    """
    if len(query.sort) != 1 or query.where is None:
        return None
    field = query.sort[0].field
    children = query.where.children if isinstance(query.where, And) else (query.where,)
    candidates = [c for c in children if isinstance(c, Condition) and drivable(c)]
    own = [c for c in candidates if c.field == field and c.kind is field.kind]
    if not own or not _single_valued(field):
        return None
    driver = own[0]
    count = compiler.estimate(driver)
    others = [c for c in candidates if c is not driver]
    if any(compiler.estimate(c, cap=count) < count for c in others):
        return None
    return driver


def _without(node: Node, condition: Condition) -> Node | None:
    if node is condition:
        return None
    assert isinstance(node, And)
    rest = tuple(child for child in node.children if child is not condition)
    return rest[0] if len(rest) == 1 else And(rest)


def _driven_statement(
    session: Session,
    *,
    project_pk: int,
    query: CatalogQuery,
    dialect: str,
    driver: Condition,
) -> tuple[Select[Any], list[tuple[ColumnElement[Any], bool]], ColumnElement[int]]:
    """The search as a walk along ``driver``'s rows in sort order (see ``_sort_driver``)."""
    row = aliased(SeriesAttribute)
    value = value_column(driver, row)
    assert query.where is not None
    rest = CatalogQuery(where=_without(query.where, driver), text=query.text)
    statement = (
        select(row.series_pk, value)
        .join(
            SeriesProject,
            and_(SeriesProject.series_pk == row.series_pk, SeriesProject.project_pk == project_pk),
        )
        .where(
            row.field == driver.field.name,
            value_test(value, driver),
            *scoped_filters(
                rest,
                subject=row.series_pk,
                project_pk=project_pk,
                dialect=dialect,
                session=session,
                driven=True,
            ),
        )
    )
    return statement, [(value, query.sort[0].order is SortOrderValues.desc)], row.series_pk


def _sorted_statement(
    session: Session, *, project_pk: int, query: CatalogQuery, dialect: str
) -> tuple[Select[Any], list[tuple[ColumnElement[Any], bool]], ColumnElement[int]]:
    """The search's pks and sort values in a select to order: the matches joined to their
    sort keys."""
    keys = [(_key(key), key.order is SortOrderValues.desc) for key in query.sort]
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
    return statement, keys, Series.id


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
    compiler = FilterCompiler(
        subject=Series.id, project_pk=project_pk, dialect=dialect, session=session
    )
    driver = _sort_driver(query, compiler)
    # Only pks and sort values go through the sort; the page's rows are read afterwards.
    if driver is not None:
        statement, keys, pk_column = _driven_statement(
            session, project_pk=project_pk, query=query, dialect=dialect, driver=driver
        )
    else:
        statement, keys, pk_column = _sorted_statement(
            session, project_pk=project_pk, query=query, dialect=dialect
        )
    if cursor:
        values, pk = decode_cursor(query, cursor)
        statement = statement.where(_after(keys, values, pk_column, pk))
    id_descending = keys[-1][1] if keys else True
    order = [e.desc() if d else e.asc() for e, d in keys]
    order.append(pk_column.desc() if id_descending else pk_column.asc())
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
