"""STOW-RS (PS3.18 §10.5): store the parts of a ``multipart/related`` request.

Each part goes through the same ingest as a C-STORE (durable before it is acknowledged), one at
a time as the body streams in, so a large upload never sits in memory and a bad part fails on
its own: it is listed in FailedSOPSequence with a FailureReason and the good ones are stored.
Status: 200 all stored, 202 some failed, 409 none stored. The reason for the first failure also
goes into a ``Warning`` header, since the DICOM response has codes only.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom.dataset import Dataset
from starlette.concurrency import run_in_threadpool

from kaapana.archive import Archive, StoreResult, StoreTarget
from kaapana.archive.metadata import ensure_part10, read_header
from kaapana.dicomweb.context import DICOM_JSON, ContextDep, DicomwebContext
from kaapana.dicomweb.media_types import parse_media_type
from kaapana.dicomweb.multipart import Part, boundary_of, read_parts
from kaapana.dicomweb.negotiation import DICOM
from kaapana.dicomweb.uids import check_uid
from kaapana.errors import (
    Conflict,
    InvalidDicom,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)
router = APIRouter()
# PS3.18 Table 10.5.3-2 / PS3.4 Annex B status codes used as FailureReason
PROCESSING_FAILURE: Final = 0x0110
DUPLICATE_SOP_INSTANCE: Final = 0x0111
CANNOT_UNDERSTAND: Final = 0xC000
STUDY_MISMATCH: Final = 0xA900  # "data set does not match": not of the study in the path


@dataclass
class _Outcome:
    stored: list[StoreResult] = field(default_factory=list)
    failed: list[tuple[str, str, int, str]] = field(default_factory=list)  # class, uid, code, why
    studies: set[str] = field(default_factory=set)


def _check_content_type(request: Request) -> str:
    header = request.headers.get("content-type")
    if not header:
        raise UnsupportedMediaType(
            f'STOW-RS needs Content-Type: multipart/related; type="{DICOM}"; boundary=...'
        )
    media_type = parse_media_type(header)
    if media_type.type != "multipart/related":
        raise UnsupportedMediaType(
            f'STOW-RS takes multipart/related; type="{DICOM}", got {media_type.type}'
        )
    part_type = media_type.params.get("type", DICOM).lower()
    if part_type != DICOM:
        raise UnsupportedMediaType(
            f"STOW-RS here takes {DICOM} parts only, got type={part_type} "
            "(metadata+bulk data uploads are not supported)"
        )
    return boundary_of(media_type)


def _store_part(
    archive: Archive,
    target: StoreTarget,
    part: Part,
    number: int,
    study: str | None,
    outcome: _Outcome,
) -> None:
    part_type = (part.content_type or DICOM).split(";")[0].strip().lower()
    if part_type != DICOM:
        outcome.failed.append(
            ("", "", CANNOT_UNDERSTAND, f"part {number} is {part_type}, not {DICOM}")
        )
        return
    try:
        data = ensure_part10(part.read())
        if study is not None:
            mismatch = _other_study(data, study)
            if mismatch is not None:
                outcome.failed.append(mismatch)
                return
        result = archive.store_bytes(data, target, source=f"STOW-RS part {number}", wait=False)
    except InvalidDicom as exc:
        outcome.failed.append(("", "", CANNOT_UNDERSTAND, exc.detail))
        return
    except Conflict as exc:
        outcome.failed.append(("", "", DUPLICATE_SOP_INSTANCE, exc.detail))
        return
    except OSError as exc:
        log.exception("STOW-RS part %d could not be stored", number)
        outcome.failed.append(("", "", PROCESSING_FAILURE, f"storage failed: {exc.strerror}"))
        return
    outcome.stored.append(result)
    outcome.studies.add(result.study_instance_uid)


def _other_study(data: bytes, study: str) -> tuple[str, str, int, str] | None:
    """A failure entry when the object belongs to another study than the request's path.

    Checked before storing: an object reported as failed must not be kept.
    """
    header = read_header(data)
    found = str(header.get("StudyInstanceUID", "")).strip("\x00 ")
    if found == study:
        return None
    return (
        str(header.get("SOPClassUID", "")),
        str(header.get("SOPInstanceUID", "")),
        STUDY_MISMATCH,
        f"instance belongs to study {found or '(none)'}, not {study}",
    )


async def _store(request: Request, context: DicomwebContext, study: str | None) -> Response:
    boundary = _check_content_type(request)
    limit = context.platform.settings.stow_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; this server takes at most {limit}")
    project = await run_in_threadpool(context.store_project)
    archive = context.platform.archive
    target = await run_in_threadpool(archive.target, project.name)
    outcome = _Outcome()
    number = 0
    async for part in read_parts(request.stream(), boundary=boundary, max_body_bytes=limit):
        number += 1
        with part:
            await run_in_threadpool(_store_part, archive, target, part, number, study, outcome)
    if number == 0:
        raise InvalidInput("the multipart body has no parts")
    await run_in_threadpool(archive.flush)  # what we answer for is searchable right away
    await run_in_threadpool(
        context.platform.auth.audit.record,
        "store",
        actor=context.principal.username,
        target=",".join(sorted(outcome.studies))[:1024],
        project=project.name,
        outcome="success" if not outcome.failed else "partial" if outcome.stored else "failure",
        detail={"via": "STOW-RS", "stored": len(outcome.stored), "failed": len(outcome.failed)},
    )
    return _response(context, outcome, study)


def _response(context: DicomwebContext, outcome: _Outcome, study: str | None) -> Response:
    answer = Dataset()
    studies = sorted(outcome.studies) or ([study] if study else [])
    if len(studies) == 1:
        answer.RetrieveURL = context.url(f"studies/{studies[0]}")
    if outcome.stored:
        answer.ReferencedSOPSequence = [_referenced(context, result) for result in outcome.stored]
    if outcome.failed:
        answer.FailedSOPSequence = [_failed(*failure) for failure in outcome.failed]
    status = 409 if not outcome.stored else 202 if outcome.failed else 200
    headers = {}
    if outcome.failed:
        reason = outcome.failed[0][3].replace('"', "'").encode("ascii", "replace").decode()
        headers["Warning"] = f'299 kaapana "{reason[:300]}"'
    body: Any = answer.to_json()
    return Response(body, status_code=status, media_type=DICOM_JSON, headers=headers)


def _referenced(context: DicomwebContext, result: StoreResult) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = result.sop_class_uid
    item.ReferencedSOPInstanceUID = result.sop_instance_uid
    item.RetrieveURL = context.url(
        f"studies/{result.study_instance_uid}/series/{result.series_instance_uid}"
        f"/instances/{result.sop_instance_uid}"
    )
    return item


def _failed(sop_class_uid: str, sop_instance_uid: str, code: int, _reason: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid or None
    item.ReferencedSOPInstanceUID = sop_instance_uid or None
    item.FailureReason = code
    return item


@router.post("/studies", include_in_schema=False)
async def store_instances(request: Request, context: ContextDep) -> Response:
    return await _store(request, context, None)


@router.post("/studies/{study}", include_in_schema=False)
async def store_study_instances(study: str, request: Request, context: ContextDep) -> Response:
    return await _store(request, context, check_uid(study, field="study"))
