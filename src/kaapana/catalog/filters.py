"""A checked ``CatalogQuery`` as SQL over the attribute table, the tags and the text index.

Every condition becomes ``subject IN (SELECT series_pk FROM series_attributes WHERE field = :f
AND <value test>)``, which rides on the (field, text_value) or (field, number_value) index;
NOT and ``!=`` are the complement (a series without the field matches them). Dates and
date-times are DICOM digit strings, so a partial date is a period: ``StudyDate = "2023"`` is the
year 2023, ``<= "2023-05"`` runs to the end of May. All values are bound parameters; LIKE
patterns escape ``%``, ``_`` and the escape character itself.
"""

import re
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    column,
    func,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.orm import QueryableAttribute, Session

from kaapana.catalog.fields import FieldKindValues
from kaapana.catalog.query import And, Condition, Node, Not, OperatorValues, Or
from kaapana.db.models import SeriesAttribute, SeriesTag, SeriesText
from kaapana.errors import InvalidInput

# Sorts after every digit: "2023" .. "2023~" spans every date that starts with 2023.
_PERIOD_END: Final = "~"
_ESCAPE: Final = "\\"
_WORD = re.compile(r"[^\W_]+")
# Counting a condition's rows stops here: enough to tell selective from unselective.
_ESTIMATE_CAP: Final = 25_000
_Op = OperatorValues
_K = FieldKindValues


def like_pattern(wildcard: str) -> str:
    """A DICOM-style wildcard (``*``, ``?``) as a LIKE pattern, everything else literal."""
    escaped = (
        wildcard.replace(_ESCAPE, _ESCAPE * 2)
        .replace("%", _ESCAPE + "%")
        .replace("_", _ESCAPE + "_")
    )
    return escaped.replace("*", "%").replace("?", "_").lower()


def _ordered(column: Any, op: OperatorValues, value: Any) -> ColumnElement[bool]:
    comparisons = {
        _Op.eq: column == value,
        _Op.lt: column < value,
        _Op.le: column <= value,
        _Op.gt: column > value,
        _Op.ge: column >= value,
    }
    return comparisons[op]


def _period(column: Any, op: OperatorValues, value: str) -> ColumnElement[bool]:
    """Comparisons of a digit string with a period (a prefix) of dates."""
    end = value + _PERIOD_END
    if op is _Op.eq:
        return and_(column >= value, column < end)
    return {
        _Op.lt: column < value,
        _Op.le: column < end,
        _Op.gt: column >= end,
        _Op.ge: column >= value,
    }[op]


def value_test(column: Any, condition: Condition) -> ColumnElement[bool]:
    op, value, kind = condition.op, condition.value, condition.kind
    periods = kind in (_K.date, _K.datetime)
    if op is _Op.wildcard:
        return func.lower(column).like(like_pattern(value), escape=_ESCAPE)
    if op is _Op.in_:
        if periods:
            return or_(*(_period(column, _Op.eq, v) for v in value))
        return column.in_(value)
    if op is _Op.range:
        low, high = value
        tests = []
        if low is not None:
            tests.append(_period(column, _Op.ge, low) if periods else column >= low)
        if high is not None:
            tests.append(_period(column, _Op.le, high) if periods else column <= high)
        return and_(*tests)
    compared = _Op.eq if op is _Op.ne else op
    return _period(column, compared, value) if periods else _ordered(column, compared, value)


def drivable(condition: Condition) -> bool:
    """A condition that a series matches by having a matching row of its own."""
    return condition.field.kind is not _K.tag and condition.op not in (_Op.ne, _Op.exists)


def value_column(condition: Condition, row: Any = SeriesAttribute) -> Any:
    """The column of ``row`` (``series_attributes`` or an alias) the condition compares."""
    return row.number_value if condition.kind is _K.number else row.text_value


class FilterCompiler:
    """Compiles conditions on ``subject`` (a series pk column) within one project."""

    def __init__(
        self,
        *,
        subject: QueryableAttribute[int],
        project_pk: int,
        dialect: str,
        session: Session | None = None,
        driven: bool = False,
    ) -> None:
        """``driven``: the subject's rows are narrowed already (by a condition the caller
        joins itself), so each drivable condition is probed per series, none drives."""
        self.subject = subject
        self.project_pk = project_pk
        self.dialect = dialect
        self.session = session
        self.driven = driven

    def node(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, And):
            return and_(*self._conjunction(node.children))
        if isinstance(node, Or):
            return or_(*(self.node(child) for child in node.children))
        if isinstance(node, Not):
            return not_(self.node(node.child))
        return self.condition(node)

    def _conjunction(self, children: tuple[Node, ...]) -> list[ColumnElement[bool]]:
        """AND: the condition with the fewest matches drives, the others are probed per series.

        A database builds an ``IN (subquery)`` list in full before using it; for conditions
        that each match half the project, building them costs more than checking each
        candidate of the most selective one. Without a session (a select for later use) every
        condition is a list.
        """
        candidates = [c for c in children if isinstance(c, Condition) and drivable(c)]
        if self.driven:
            return [self.probe(c) if c in candidates else self.node(c) for c in children]
        if self.session is None or self.dialect != "sqlite" or len(candidates) < 2:
            return [self.node(child) for child in children]
        driver = min(candidates, key=self.estimate)
        return [
            self.node(child) if child is driver or child not in candidates else self.probe(child)
            for child in children
        ]

    def estimate(self, condition: Condition, *, cap: int = _ESTIMATE_CAP) -> int:
        """How many rows match ``condition``, counted up to ``cap``."""
        assert self.session is not None
        column = value_column(condition)
        rows = (
            select(SeriesAttribute.series_pk)
            .where(SeriesAttribute.field == condition.field.name, value_test(column, condition))
            .limit(cap)
            .subquery()
        )
        return int(self.session.scalar(select(func.count()).select_from(rows)) or 0)

    def probe(self, condition: Condition) -> ColumnElement[bool]:
        """The condition as a check of one series (EXISTS on its own rows)."""
        return (
            select(SeriesAttribute.series_pk)
            .where(
                SeriesAttribute.series_pk == self.subject,
                SeriesAttribute.field == condition.field.name,
                value_test(value_column(condition), condition),
            )
            .exists()
        )

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        if condition.field.kind is _K.tag:
            matching = select(SeriesTag.series_pk).where(SeriesTag.project_pk == self.project_pk)
            target: Any = SeriesTag.tag
        else:
            matching = select(SeriesAttribute.series_pk).where(
                SeriesAttribute.field == condition.field.name
            )
            target = value_column(condition)
        if condition.op is _Op.exists:
            inside = self.subject.in_(matching)
            return inside if condition.value else not_(inside)
        inside = self.subject.in_(matching.where(value_test(target, condition)))
        return not_(inside) if condition.op is _Op.ne else inside

    def text(self, words: str) -> ColumnElement[bool]:
        """Every word matches (as a prefix) the series' text document or a project tag."""
        tokens = [token.lower() for token in _WORD.findall(words)]
        if not tokens:
            raise InvalidInput(f"text: {words!r:.80} has no words to search for")
        clauses = []
        for token in tokens:
            tagged = select(SeriesTag.series_pk).where(
                SeriesTag.project_pk == self.project_pk,
                func.lower(SeriesTag.tag).like(like_pattern(token) + "%", escape=_ESCAPE),
            )
            clauses.append(or_(self.subject.in_(self._documents(token)), self.subject.in_(tagged)))
        return and_(*clauses)

    def _documents(self, token: str) -> Any:
        if self.dialect == "sqlite":
            # A quoted FTS5 string with a prefix star: the token is letters and digits only.
            match = bindparam("fts", f'"{token}"*', unique=True)
            return (
                text("SELECT rowid FROM series_text_fts WHERE series_text_fts MATCH :fts")
                .bindparams(match)
                .columns(column("rowid", Integer))
            )
        return select(SeriesText.series_pk).where(
            func.to_tsvector("simple", SeriesText.body).op("@@")(
                func.to_tsquery("simple", f"{token}:*")
            )
        )


__all__ = ["FilterCompiler", "drivable", "like_pattern", "value_column", "value_test"]
