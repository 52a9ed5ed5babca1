"""Keys that are not index columns, answered from the precomputed DICOM JSON (PS3.18 F.2).

Matching on them runs in Python over the candidates SQL returned; their values are converted back
with ``Dataset.from_json``. Bulk data (replaced by URIs at ingest) is returned empty: a C-FIND
response carries attributes, not pixel data.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaapana.archive.attributes import QueryRetrieveLevelValues
from kaapana.archive.computed import chunks
from kaapana.archive.matching import Condition, json_matches, parse_condition, sequence_matches
from kaapana.archive.visibility import ProjectScope, visible_series
from kaapana.db.models import Series, Study

Document = dict[str, Any]


def _json_tag(element: DataElement) -> str:
    return f"{element.tag:08X}"


@dataclass(frozen=True, slots=True)
class JsonFilter:
    """One key that constrains the matches and is not an index column."""

    element: DataElement
    condition: Condition | None  # None for sequence matching

    def matches(self, document: Document | None) -> bool:
        stored = (document or {}).get(_json_tag(self.element))
        if self.condition is None:
            return sequence_matches(self.element, stored) is not None
        return json_matches(self.condition, stored)


def json_filters(keys: Sequence[DataElement]) -> list[JsonFilter]:
    """The keys among ``keys`` that constrain anything (universal ones are return keys only)."""
    filters = []
    for element in keys:
        if element.VR == "SQ":
            if element.value:
                filters.append(JsonFilter(element, None))
        elif (condition := parse_condition(element)) is not None:
            filters.append(JsonFilter(element, condition))
    return filters


def representative_documents(
    session: Session,
    level: QueryRetrieveLevelValues,
    pks: Sequence[int],
    projects: ProjectScope,
) -> dict[int, Document]:
    """Study or patient pk -> JSON of its first visible series (their attributes live there)."""
    if level is QueryRetrieveLevelValues.STUDY:
        owner = Series.study_pk
        statement = select(owner, func.min(Series.id)).group_by(owner)
    else:
        owner = Study.patient_pk
        statement = (
            select(owner, func.min(Series.id))
            .join(Study, Series.study_pk == Study.id)
            .group_by(owner)
        )
    if projects is not None:
        statement = statement.where(visible_series(Series, projects))
    representative: dict[int, int] = {}
    for chunk in chunks(pks):
        rows = session.execute(statement.where(owner.in_(chunk)))
        representative.update((int(pk), int(series_pk)) for pk, series_pk in rows)
    series_pks = sorted(set(representative.values()))
    documents: dict[int, Document] = {}
    for chunk in chunks(series_pks):
        rows = session.execute(select(Series.id, Series.metadata_json).where(Series.id.in_(chunk)))
        documents.update((int(pk), document) for pk, document in rows)
    return {pk: documents[series_pk] for pk, series_pk in representative.items()}


def _clean(value: Document) -> Document:
    """A JSON element without bulk data URIs, which ``from_json`` cannot resolve here."""
    if "BulkDataURI" in value:
        return {"vr": value.get("vr", "UN")}
    if value.get("vr") == "SQ":
        items = [
            {tag: _clean(element) for tag, element in item.items()}
            for item in value.get("Value") or []
            if isinstance(item, dict)
        ]
        return {"vr": "SQ", "Value": items}
    return value


def _reduce(item: Document, query: Dataset) -> Document:
    """A stored sequence item cut down to the keys of the query item (PS3.4 C.2.2.2.6)."""
    reduced: Document = {}
    for element in query:
        if element.tag.element == 0:
            continue
        tag = _json_tag(element)
        stored = item.get(tag)
        if stored is None:
            reduced[tag] = {"vr": element.VR}
        elif element.VR == "SQ" and element.value:
            reduced[tag] = {
                "vr": "SQ",
                "Value": [_reduce(sub, element.value[0]) for sub in stored.get("Value") or []],
            }
        else:
            reduced[tag] = _clean(stored)
    return reduced


def json_element(element: DataElement, document: Document | None) -> DataElement:
    """The response element for return key ``element``: its stored value, or empty."""
    tag = _json_tag(element)
    stored = (document or {}).get(tag)
    if element.VR == "SQ":
        items = sequence_matches(element, stored) or []
        if element.value:
            items = [_reduce(item, element.value[0]) for item in items]
        stored = {"vr": "SQ", "Value": items}
    if stored is None:
        return DataElement(element.tag, element.VR, None)
    return Dataset.from_json({tag: _clean(stored)})[element.tag]


__all__ = ["Document", "JsonFilter", "json_element", "json_filters", "representative_documents"]
