"""The query service behind C-FIND (and QIDO-RS): PS3.4 C.4.1 matching over the index.

Keys that are index columns (``attributes.INDEX_COLUMNS``) and the computed study attributes are
matched in SQL; the computed values of a page of results cost one grouped query per kind. Any
other key is answered from the precomputed DICOM JSON (``documents``): series JSON at SERIES
level, instance JSON at IMAGE level, and at STUDY and PATIENT level the JSON of a representative
series (the first visible one). Matching on such keys runs in Python after SQL has narrowed the
candidates, so it costs one JSON document per candidate.

The search is lenient where SCUs commonly are: any key at or above the query level may constrain
it (not only the unique keys the hierarchical model asks for), and keys of lower levels are
returned empty instead of failing the request. Every response carries the unique keys of its level
and the levels above.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from sqlalchemy import ColumnElement, Engine, Select, exists, select
from sqlalchemy.orm import Session, aliased

from kaapana.archive.attributes import (
    COMPUTED_ATTRIBUTES,
    INDEX_COLUMNS,
    UNIQUE_KEYS,
    InformationModelValues,
    QueryRetrieveLevelValues,
    depth,
    levels_down_to,
    query_level,
)
from kaapana.archive.computed import PATIENT_COUNTS, ComputedValues, computed_values
from kaapana.archive.documents import (
    Document,
    JsonFilter,
    json_element,
    json_filters,
    representative_documents,
)
from kaapana.archive.matching import Condition, parse_condition, query_values, sql_clause
from kaapana.archive.visibility import (
    ProjectScope,
    visible_patient,
    visible_series,
    visible_study,
)
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Patient, Series, Study
from kaapana.errors import InvalidInput

_Level = QueryRetrieveLevelValues
_PKS: Final = {
    _Level.PATIENT: (Patient.id, "_patient_pk"),
    _Level.STUDY: (Study.id, "_study_pk"),
    _Level.SERIES: (Series.id, "_series_pk"),
    _Level.IMAGE: (Instance.id, "_instance_pk"),
}
_ORDER: Final = {
    _Level.PATIENT: (Patient.patient_id, Patient.id),
    _Level.STUDY: (Study.study_date, Study.study_time, Study.id),
    _Level.SERIES: (Series.study_pk, Series.series_number.nulls_last(), Series.id),
    _Level.IMAGE: (Instance.series_pk, Instance.instance_number.nulls_last(), Instance.id),
}
# ModalitiesInStudy / SOPClassesInStudy constrain a study: some visible series or instance has it.
_STUDY_MEMBER_KEYS: Final = frozenset({"ModalitiesInStudy", "SOPClassesInStudy"})
# Keys that steer the query itself, never matched and echoed only as the standard says.
_CONTROL_KEYWORDS: Final = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet"})
_TEXT_VRS: Final = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_QUERY_RETRIEVE_LEVEL: Final = BaseTag(0x00080052)
_SPECIFIC_CHARACTER_SET: Final = BaseTag(0x00080005)
UTF8: Final = "ISO_IR 192"


@dataclass(frozen=True, slots=True)
class RetrieveItem:
    """One stored object a C-MOVE/C-GET sends, with what its presentation context needs."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    storage_key: str
    study_instance_uid: str


@dataclass(frozen=True, slots=True)
class _Matches:
    """What one query found: rows, their JSON documents and computed values, in order."""

    level: QueryRetrieveLevelValues
    keys: list[DataElement]
    rows: Sequence[Any]
    documents: dict[int, Document]
    computed: ComputedValues


def _pk(row: Any, level: QueryRetrieveLevelValues) -> int:
    return int(row._mapping[_PKS[level][1]])


def _source(level: QueryRetrieveLevelValues, keyword: str) -> str:
    """Where a return key's value comes from: column, computed, json, a constant, or empty."""
    entry = INDEX_COLUMNS.get(keyword)
    if entry is not None:
        return "column" if depth(entry.level) <= depth(level) else "empty"
    if keyword in COMPUTED_ATTRIBUTES:
        return "computed" if level in COMPUTED_ATTRIBUTES[keyword] else "empty"
    if keyword in ("InstanceAvailability", "RetrieveAETitle"):
        return keyword
    return "json"


def _level_visible(
    level: QueryRetrieveLevelValues, projects: frozenset[int]
) -> ColumnElement[bool]:
    if level is _Level.PATIENT:
        return visible_patient(projects)
    if level is _Level.STUDY:
        return visible_study(projects)
    return visible_series(Series, projects)


def _study_has(
    keyword: str, condition: Condition, projects: ProjectScope, dialect: str
) -> ColumnElement[bool]:
    member = aliased(Series)
    query = select(1).select_from(member).where(member.study_pk == Study.id)
    if keyword == "SOPClassesInStudy":
        instance = aliased(Instance)
        query = query.join(instance, instance.series_pk == member.id).where(
            sql_clause(condition, instance.sop_class_uid, dialect=dialect)
        )
    else:
        query = query.where(sql_clause(condition, member.modality, dialect=dialect))
    if projects is not None:
        query = query.where(visible_series(member, projects))
    return exists(query)


_TOP_DOWN: Final = (Patient, Study, Series, Instance)
_JOIN_UP: Final = {
    Study: Study.patient_pk == Patient.id,
    Series: Series.study_pk == Study.id,
    Instance: Instance.series_pk == Series.id,
}


def _base_select(level: QueryRetrieveLevelValues, *, with_json: bool) -> Select[Any]:
    """Every index column of the level and above, the pks, and the JSON when keys need it."""
    columns: list[Any] = [
        entry.column.label(keyword)
        for keyword, entry in INDEX_COLUMNS.items()
        if depth(entry.level) <= depth(level)
    ]
    columns += [
        column.label(label) for lvl, (column, label) in _PKS.items() if depth(lvl) <= depth(level)
    ]
    if with_json and level is _Level.SERIES:
        columns.append(Series.metadata_json.label("_json"))
    if with_json and level is _Level.IMAGE:
        columns.append(Instance.metadata_json.label("_json"))
    tables = _TOP_DOWN[: depth(level) + 1]
    statement = select(*columns).select_from(tables[-1])
    for lower, upper in zip(reversed(tables), reversed(tables[:-1]), strict=False):
        statement = statement.join(upper, _JOIN_UP[lower])
    return statement.order_by(*_ORDER[level])


class ArchiveQuery:
    """C-FIND matching and C-MOVE/C-GET resolution over the index of one archive."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)
        self._dialect = engine.dialect.name

    def find(
        self,
        *,
        model: InformationModelValues,
        identifier: Dataset,
        projects: ProjectScope,
        retrieve_ae_title: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Iterator[Dataset]:
        """The matches of ``identifier``, each a data set of the requested keys only.

        ``projects`` None means the caller sees everything. Raises ``InvalidInput`` for an
        identifier the model cannot answer. The index is read before this returns, so no
        transaction stays open while a peer reads responses; the data sets are built as the
        caller iterates, so a cancelled C-FIND builds no more of them.
        """
        matches = self._match(model, identifier, projects, limit, offset)
        responses = _Responses(
            matches.level,
            model,
            matches.keys,
            computed=matches.computed,
            charset=identifier.get("SpecificCharacterSet"),
            retrieve_ae_title=retrieve_ae_title,
        )
        return (
            responses.build(row, matches.documents.get(_pk(row, matches.level)))
            for row in matches.rows
        )

    def find_json(
        self,
        *,
        model: InformationModelValues,
        identifier: Dataset,
        projects: ProjectScope,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Document]:
        """The same matches as DICOM JSON (PS3.18 F.2), built without pydicom data sets.

        QIDO-RS answers in JSON, and the stored attributes are JSON already; going through data
        sets would cost more than the query. Bulk data URIs stay relative to the DICOMweb root.
        """
        matches = self._match(model, identifier, projects, limit, offset)
        responses = _Responses(
            matches.level,
            model,
            matches.keys,
            computed=matches.computed,
            charset=None,
            retrieve_ae_title=None,
        )
        plan = [(key, f"{key.element.tag:08X}") for key in responses.keys]
        answers = []
        for row in matches.rows:
            document = matches.documents.get(_pk(row, matches.level)) or {}
            answer: Document = {}
            for key, tag in plan:
                if key.source == "json":
                    answer[tag] = document.get(tag) or {"vr": key.vr}
                else:
                    answer[tag] = json_value(key.vr, responses.value(key, row))
            answers.append(answer)
        return answers

    def _match(
        self,
        model: InformationModelValues,
        identifier: Dataset,
        projects: ProjectScope,
        limit: int | None,
        offset: int,
    ) -> "_Matches":
        level = query_level(identifier, model)
        keys = [
            element
            for element in identifier
            if element.tag.element != 0 and element.keyword not in _CONTROL_KEYWORDS
        ]
        statement, filters, json_wanted = self._plan(level, keys, projects)
        with self._sessions() as session:
            if not filters:
                statement = statement.offset(offset).limit(limit)
            rows: Sequence[Any] = session.execute(statement).all()
            documents = self._documents(session, level, rows, projects) if json_wanted else {}
            if filters:
                rows = [
                    row
                    for row in rows
                    if all(check.matches(documents.get(_pk(row, level))) for check in filters)
                ]
                rows = rows[offset : None if limit is None else offset + limit]
            computed = self._computed(session, level, rows, keys, projects)
        return _Matches(level, keys, rows, documents, computed)

    def _plan(
        self, level: QueryRetrieveLevelValues, keys: list[DataElement], projects: ProjectScope
    ) -> tuple[Select[Any], list[JsonFilter], bool]:
        """The SQL for index keys, the Python filters for JSON keys, and whether JSON is needed."""
        conditions: list[ColumnElement[bool]] = []
        json_keys: list[DataElement] = []
        for element in keys:
            source = _source(level, element.keyword)
            if source == "column":
                condition = parse_condition(element)
                if condition is not None:
                    column = INDEX_COLUMNS[element.keyword].column
                    conditions.append(sql_clause(condition, column, dialect=self._dialect))
            elif source == "computed" and element.keyword in _STUDY_MEMBER_KEYS:
                condition = parse_condition(element)
                if condition is not None:
                    conditions.append(
                        _study_has(element.keyword, condition, projects, self._dialect)
                    )
            elif source == "json":
                json_keys.append(element)
        if projects is not None:
            conditions.append(_level_visible(level, projects))
        statement = _base_select(level, with_json=bool(json_keys)).where(*conditions)
        return statement, json_filters(json_keys), bool(json_keys)

    def _documents(
        self,
        session: Session,
        level: QueryRetrieveLevelValues,
        rows: Sequence[Any],
        projects: ProjectScope,
    ) -> dict[int, Document]:
        if level in (_Level.SERIES, _Level.IMAGE):
            return {_pk(row, level): row._mapping["_json"] or {} for row in rows}
        pks = [_pk(row, level) for row in rows]
        return representative_documents(session, level, pks, projects)

    def _computed(
        self,
        session: Session,
        level: QueryRetrieveLevelValues,
        rows: Sequence[Any],
        keys: list[DataElement],
        projects: ProjectScope,
    ) -> ComputedValues:
        wanted = {e.keyword for e in keys if _source(level, e.keyword) == "computed"}
        if not wanted or not rows:
            return {}
        patient_pks = sorted({_pk(row, _Level.PATIENT) for row in rows})
        study_pks = [] if level is _Level.PATIENT else [_pk(row, _Level.STUDY) for row in rows]
        return computed_values(
            session,
            keywords=wanted,
            patient_pks=patient_pks,
            study_pks=study_pks,
            projects=projects,
        )

    def instances_to_retrieve(
        self, *, model: InformationModelValues, identifier: Dataset, projects: ProjectScope
    ) -> list[RetrieveItem]:
        """The visible instances a C-MOVE/C-GET identifier names, in series and instance order.

        The unique key of the level is required (one value or a list); unique keys of the levels
        above narrow the selection when present. Wildcards are not special in a retrieve.
        """
        level = query_level(identifier, model)
        conditions: list[ColumnElement[bool]] = []
        for above in levels_down_to(model, level):
            keyword = UNIQUE_KEYS[above]
            values = query_values(identifier[keyword]) if keyword in identifier else []
            if not values and above is level:
                raise InvalidInput(f"a {level.value} level retrieve needs '{keyword}'")
            if values:
                conditions.append(INDEX_COLUMNS[keyword].column.in_(values))
        if projects is not None:
            conditions.append(visible_series(Series, projects))
        statement = (
            select(
                Instance.sop_class_uid,
                Instance.sop_instance_uid,
                Instance.transfer_syntax_uid,
                Instance.storage_key,
                Study.study_instance_uid,
            )
            .join(Series, Instance.series_pk == Series.id)
            .join(Study, Series.study_pk == Study.id)
            .join(Patient, Study.patient_pk == Patient.id)
            .where(*conditions)
            .order_by(Study.id, Series.id, Instance.instance_number.nulls_last(), Instance.id)
        )
        with self._sessions() as session:
            return [RetrieveItem(*row) for row in session.execute(statement)]


@dataclass(frozen=True, slots=True)
class _ReturnKey:
    """A requested key and where its value comes from, worked out once per query."""

    element: DataElement
    source: str
    vr: str


def _is_ascii(element: DataElement) -> bool:
    if element.VR == "SQ":
        return all(_is_ascii(inner) for item in element.value for inner in item)
    if element.VR not in _TEXT_VRS or not element.value:
        return True
    values = element.value if isinstance(element.value, MultiValue) else [element.value]
    return all(str(value).isascii() for value in values)


class _Responses:
    """Builds the response data sets of one query: the requested keys, unique keys and level.

    Responses with text the default repertoire cannot carry declare UTF-8; otherwise the
    request's Specific Character Set is echoed when it had one.
    """

    def __init__(
        self,
        level: QueryRetrieveLevelValues,
        model: InformationModelValues,
        keys: list[DataElement],
        *,
        computed: ComputedValues,
        charset: Any,
        retrieve_ae_title: str | None,
    ) -> None:
        self._level = level
        self._computed = computed
        self._charset = charset
        self._retrieve_ae_title = retrieve_ae_title
        plan = {
            element.tag: self._key(element, _source(level, element.keyword)) for element in keys
        }
        for above in levels_down_to(model, level):
            element = _empty(UNIQUE_KEYS[above])
            plan[element.tag] = self._key(element, "column")
        self._keys = list(plan.values())

    @staticmethod
    def _key(element: DataElement, source: str) -> _ReturnKey:
        known = element.keyword and source != "json"
        vr = dictionary_VR(element.tag) if known else element.VR
        return _ReturnKey(element, source, vr)

    @property
    def keys(self) -> list[_ReturnKey]:
        return self._keys

    def value(self, key: _ReturnKey, row: Any) -> Any:
        """The value of a non-JSON return key for one row."""
        keyword = key.element.keyword
        if key.source == "column":
            return row._mapping[keyword]
        if key.source == "computed":
            owner = _Level.PATIENT if keyword in PATIENT_COUNTS else _Level.STUDY
            return self._computed[keyword][_pk(row, owner)]
        if key.source == "InstanceAvailability":
            return "ONLINE"
        if key.source == "RetrieveAETitle":
            return self._retrieve_ae_title
        return None

    def build(self, row: Any, document: Document | None) -> Dataset:
        elements: dict[BaseTag, DataElement] = {}
        ascii_only = True
        for key in self._keys:
            if key.source == "json":
                element = json_element(key.element, document)
            else:
                value = self.value(key, row)
                empty = value is None or value == "" or value == []
                element = DataElement(
                    key.element.tag, key.vr, None if empty else value, validation_mode=config.IGNORE
                )
            elements[element.tag] = element
            ascii_only = ascii_only and _is_ascii(element)
        level = DataElement(_QUERY_RETRIEVE_LEVEL, "CS", self._level.value)
        elements[level.tag] = level
        charset = self._charset if ascii_only else UTF8
        if charset:
            elements[_SPECIFIC_CHARACTER_SET] = DataElement(_SPECIFIC_CHARACTER_SET, "CS", charset)
        return Dataset(elements)


_JSON_INTEGER_VRS: Final = frozenset({"IS", "SL", "SS", "SV", "UL", "US", "UV"})
_JSON_DECIMAL_VRS: Final = frozenset({"DS", "FD", "FL"})


def json_value(vr: str, value: Any) -> Document:
    """An index value as a DICOM JSON element (PS3.18 F.2.3): numbers as numbers, PN as a name."""
    if value is None or value == "" or value == []:
        return {"vr": vr}
    values = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": str(v)} for v in values]}
    try:
        if vr in _JSON_INTEGER_VRS:
            return {"vr": vr, "Value": [int(v) for v in values]}
        if vr in _JSON_DECIMAL_VRS:
            return {"vr": vr, "Value": [float(v) for v in values]}
    except (TypeError, ValueError):
        return {"vr": vr}
    return {"vr": vr, "Value": [str(v) for v in values]}


def _empty(keyword: str) -> DataElement:
    tag = cast(int, tag_for_keyword(keyword))
    return DataElement(tag, dictionary_VR(tag), None)


__all__ = ["UTF8", "ArchiveQuery", "RetrieveItem", "json_value"]
