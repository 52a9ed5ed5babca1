"""QIDO-RS (PS3.18 §10.6): search for studies, series and instances.

A search becomes the same identifier a C-FIND would carry and runs through ``ArchiveQuery``, so
both interfaces match alike (wildcards, ranges, UID lists, sequences) and answer from the index
and the precomputed JSON, never from files. Each level returns the attributes PS3.18 Table
10.6.3-3/4/5 requires, plus ``includefield`` keys (``all``: the whole stored JSON of the level).
"""

from collections.abc import Sequence
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from sqlalchemy import select

from kaapana.archive.attributes import InformationModelValues, QueryRetrieveLevelValues
from kaapana.archive.query import ArchiveQuery
from kaapana.archive.visibility import visible_series
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, Study
from kaapana.dicomweb.context import (
    ContextDep,
    DicomwebContext,
    absolute_bulk_data,
    dicom_json_response,
)
from kaapana.dicomweb.uids import check_uid
from kaapana.errors import InvalidInput

router = APIRouter()
_Level = QueryRetrieveLevelValues
MAX_LIMIT: Final = 10_000
DEFAULT_LIMIT: Final = 1_000
_CONTROL: Final = frozenset({"includefield", "limit", "offset", "fuzzymatching"})
_NUMERIC: Final = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int}
_FLOAT: Final = frozenset({"FL", "FD"})
_REQUIRED: Final = {
    _Level.STUDY: (
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "InstanceAvailability",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "StudyDescription",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    _Level.SERIES: (
        "Modality",
        "SeriesDescription",
        "SeriesInstanceUID",
        "SeriesNumber",
        "NumberOfSeriesRelatedInstances",
        "BodyPartExamined",
        "StudyInstanceUID",
    ),
    _Level.IMAGE: (
        "SOPClassUID",
        "SOPInstanceUID",
        "InstanceAvailability",
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
        "StudyInstanceUID",
        "SeriesInstanceUID",
    ),
}
# "includefield=all" at study level: the patient and study attributes of the stored JSON.
_STUDY_LEVEL_KEYWORDS: Final = frozenset(
    {
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyID",
        "StudyDescription",
        "PhysiciansOfRecord",
        "NameOfPhysiciansReadingStudy",
        "AdmittingDiagnosesDescription",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "IssuerOfAccessionNumberSequence",
        "ProcedureCodeSequence",
        "RequestingService",
        "StudyInstanceUID",
        "TimezoneOffsetFromUTC",
    }
)


def _tag_of(key: str) -> int:
    if len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key):
        return int(key, 16)
    tag = tag_for_keyword(key)
    if tag is None:
        raise InvalidInput(f"unknown query key {key[:64]!r}: not a DICOM keyword or tag")
    return int(tag)


def _vr_of(tag: int, key: str) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError as exc:
        raise InvalidInput(f"attribute {key[:64]!r} is not in the DICOM dictionary") from exc


def _element(key: str, value: str | None) -> DataElement:
    """A query key (keyword, tag or dotted sequence path) as an identifier element."""
    head, _, rest = key.partition(".")
    tag = _tag_of(head)
    vr = _vr_of(tag, head)
    if rest:
        if vr != "SQ":
            raise InvalidInput(f"{head!r} is not a sequence; {key[:80]!r} cannot address into it")
        item = Dataset()
        inner = _element(rest, value)
        item[inner.tag] = inner
        return DataElement(tag, "SQ", [item])
    if vr == "SQ":
        if value:
            raise InvalidInput(f"{key!r} is a sequence: match on its attributes ({key}.Keyword)")
        return DataElement(tag, "SQ", [])
    if not value:
        return DataElement(tag, vr, None)
    if vr == "UI":
        return DataElement(tag, vr, [check_uid(v, field=key) for v in value.split(",")])
    try:
        if vr in _NUMERIC:
            return DataElement(tag, vr, int(value))
        if vr in _FLOAT:
            return DataElement(tag, vr, float(value))
    except ValueError as exc:
        raise InvalidInput(f"{key!r} needs a number, got {value[:64]!r}") from exc
    return DataElement(tag, vr, value)


def _includefields(values: Sequence[str]) -> tuple[bool, list[str]]:
    keys = [key.strip() for value in values for key in value.split(",") if key.strip()]
    return "all" in keys, [key for key in keys if key != "all"]


def _bounded(name: str, raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidInput(f"'{name}' must be an integer, got {raw[:32]!r}") from exc
    if not 0 <= value <= maximum:
        raise InvalidInput(f"'{name}' must be between 0 and {maximum}, got {value}")
    return value


def search(
    context: DicomwebContext,
    request: Request,
    level: QueryRetrieveLevelValues,
    fixed: dict[str, str],
) -> Response:
    params = request.query_params
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level.value
    include_all, include = _includefields(params.getlist("includefield"))
    for keyword in (*_REQUIRED[level], *include):
        element = _element(keyword, None)
        identifier[element.tag] = element
    for key, value in params.multi_items():
        if key in _CONTROL:
            continue
        if key in fixed:
            raise InvalidInput(f"{key!r} is given by the path already")
        element = _element(key, value)
        identifier[element.tag] = element
    for keyword, uid in fixed.items():
        identifier[keyword] = _element(keyword, uid)
    limit = _bounded("limit", params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    offset = _bounded("offset", params.get("offset"), 0, 10**9)
    matches = ArchiveQuery(context.platform.engine).find_json(
        model=InformationModelValues.STUDY_ROOT,
        identifier=identifier,
        projects=context.scope,
        limit=limit + 1,
        offset=offset,
    )
    headers = {}
    if len(matches) > limit:
        matches = matches[:limit]
        headers["Warning"] = (
            f'299 kaapana "There are more than {limit} matches; use offset for the next page"'
        )
    if params.get("fuzzymatching", "false").lower() == "true":
        headers["Warning"] = '299 kaapana "fuzzymatching is not supported; literal matching used"'
    documents = [_document(context, level, match) for match in matches]
    if include_all:
        _merge_stored(context, level, documents)
    return dicom_json_response(documents, headers=headers)


def _document(
    context: DicomwebContext, level: QueryRetrieveLevelValues, match: dict[str, Any]
) -> dict[str, Any]:
    document = absolute_bulk_data(match, context.base_url)
    path = f"studies/{_first(match, '0020000D')}"
    if level is not _Level.STUDY:
        path += f"/series/{_first(match, '0020000E')}"
    if level is _Level.IMAGE:
        path += f"/instances/{_first(match, '00080018')}"
    document["00081190"] = {"vr": "UR", "Value": [context.url(path)]}
    return document


def _first(document: dict[str, Any], tag: str) -> str:
    return str(document[tag]["Value"][0])


def _merge_stored(
    context: DicomwebContext, level: QueryRetrieveLevelValues, documents: list[dict[str, Any]]
) -> None:
    """Add every stored attribute of the level that the answer lacks."""
    if not documents:
        return
    key = {_Level.STUDY: "0020000D", _Level.SERIES: "0020000E", _Level.IMAGE: "00080018"}[level]
    uids = [document[key]["Value"][0] for document in documents]
    with session_factory(context.platform.engine)() as session:
        if level is _Level.IMAGE:
            rows = session.execute(
                select(Instance.sop_instance_uid, Instance.metadata_json).where(
                    Instance.sop_instance_uid.in_(uids)
                )
            )
        else:
            column = (
                Series.series_instance_uid if level is _Level.SERIES else Study.study_instance_uid
            )
            statement = (
                select(column, Series.metadata_json)
                .join(Study, Series.study_pk == Study.id)
                .where(column.in_(uids))
                .order_by(Series.id)
            )
            if context.scope is not None:
                statement = statement.where(visible_series(Series, context.scope))
            rows = session.execute(statement)
        stored = {}
        for uid, document in rows:
            stored.setdefault(uid, document or {})
    for document, uid in zip(documents, uids, strict=True):
        for tag, element in absolute_bulk_data(stored.get(uid, {}), context.base_url).items():
            if tag in document:
                continue
            if level is _Level.STUDY and not _is_study_level(tag):
                continue
            document[tag] = element


def _is_study_level(tag: str) -> bool:
    value = Tag(int(tag, 16))
    return value.group == 0x0010 or keyword_for_tag(value) in _STUDY_LEVEL_KEYWORDS


@router.get("/studies", include_in_schema=False)
def search_studies(request: Request, context: ContextDep) -> Response:
    return search(context, request, _Level.STUDY, {})


@router.get("/series", include_in_schema=False)
def search_series(request: Request, context: ContextDep) -> Response:
    return search(context, request, _Level.SERIES, {})


@router.get("/instances", include_in_schema=False)
def search_instances(request: Request, context: ContextDep) -> Response:
    return search(context, request, _Level.IMAGE, {})


@router.get("/studies/{study}/series", include_in_schema=False)
def search_study_series(study: str, request: Request, context: ContextDep) -> Response:
    return search(context, request, _Level.SERIES, {"StudyInstanceUID": check_uid(study)})


@router.get("/studies/{study}/instances", include_in_schema=False)
def search_study_instances(study: str, request: Request, context: ContextDep) -> Response:
    return search(context, request, _Level.IMAGE, {"StudyInstanceUID": check_uid(study)})


@router.get("/studies/{study}/series/{series}/instances", include_in_schema=False)
def search_series_instances(
    study: str, series: str, request: Request, context: ContextDep
) -> Response:
    fixed = {"StudyInstanceUID": check_uid(study), "SeriesInstanceUID": check_uid(series)}
    return search(context, request, _Level.IMAGE, fixed)
