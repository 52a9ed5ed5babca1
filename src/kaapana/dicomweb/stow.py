"""STOW-RS (PS3.18 §10.5): store the parts of a ``multipart/related`` request.

Each part is checked as the body streams in, as a C-STORE would be, and the good ones are
stored in batches (one round of syncs and one commit per batch, before the answer, so what is
acknowledged is durable and searchable); a large upload never sits in memory whole. A bad part
fails on its own: it is listed in FailedSOPSequence with a FailureReason. Status: 200 all
stored, 202 some failed, 409 none stored. The reason for the first failure also goes into a
``Warning`` header, since the DICOM response has codes only.
"""

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from kaapana.archive import Archive, StoreResult, StoreTarget
from kaapana.archive.metadata import ReceivedObject, ensure_part10, inspect
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


BATCH_OBJECTS: Final = 32
BATCH_BYTES: Final = 64 * 1024 * 1024


@dataclass
class _Batch:
    """Checked objects waiting to be stored together: one round of syncs, one commit."""

    objects: list[ReceivedObject] = field(default_factory=list)
    uids: set[str] = field(default_factory=set)

    def add(self, received: ReceivedObject) -> None:
        self.objects.append(received)
        self.uids.add(received.sop_instance_uid)


def _check_part(
    part: Part, number: int, study: str | None, outcome: _Outcome
) -> ReceivedObject | None:
    """The part as an object ready to store, or None with its failure noted."""
    part_type = (part.content_type or DICOM).split(";")[0].strip().lower()
    if part_type != DICOM:
        outcome.failed.append(
            ("", "", CANNOT_UNDERSTAND, f"part {number} is {part_type}, not {DICOM}")
        )
        return None
    try:
        received = inspect(ensure_part10(part.read()), source=f"STOW-RS part {number}")
    except InvalidDicom as exc:
        outcome.failed.append(("", "", CANNOT_UNDERSTAND, exc.detail))
        return None
    if study is not None and received.study_instance_uid != study:
        # Refused before storing: an object reported as failed must not be kept.
        outcome.failed.append(
            (
                received.sop_class_uid,
                received.sop_instance_uid,
                STUDY_MISMATCH,
                f"instance belongs to study {received.study_instance_uid}, not {study}",
            )
        )
        return None
    return received


def _store_batch(archive: Archive, target: StoreTarget, batch: _Batch, outcome: _Outcome) -> None:
    if not batch.objects:
        return
    try:
        results = archive.store_all(batch.objects, target)
    except OSError as exc:
        log.exception("STOW-RS: %d objects could not be stored", len(batch.objects))
        for received in batch.objects:
            outcome.failed.append(
                (
                    received.sop_class_uid,
                    received.sop_instance_uid,
                    PROCESSING_FAILURE,
                    f"storage failed: {exc.strerror}",
                )
            )
        return
    for received, result in zip(batch.objects, results, strict=True):
        if isinstance(result, Conflict):
            outcome.failed.append(
                (
                    received.sop_class_uid,
                    received.sop_instance_uid,
                    DUPLICATE_SOP_INSTANCE,
                    result.detail,
                )
            )
        else:
            outcome.stored.append(result)
            outcome.studies.add(result.study_instance_uid)


def _check_and_store(
    archive: Archive,
    target: StoreTarget,
    parts: list[tuple[int, Part]],
    study: str | None,
    outcome: _Outcome,
) -> None:
    """Check received parts and store the good ones, in one worker-thread call per group:
    a thread hop per part cost as much as checking a small object."""
    batch = _Batch()
    for number, part in parts:
        with part:
            received = _check_part(part, number, study, outcome)
        if received is None:
            continue
        if received.sop_instance_uid in batch.uids:  # one object per UID in a batch
            _store_batch(archive, target, batch, outcome)
            batch = _Batch()
        batch.add(received)
    _store_batch(archive, target, batch, outcome)


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
    pending: list[tuple[int, Part]] = []
    pending_bytes = 0
    number = 0
    try:
        async for part in read_parts(request.stream(), boundary=boundary, max_body_bytes=limit):
            number += 1
            pending.append((number, part))
            pending_bytes += part.size
            if len(pending) >= BATCH_OBJECTS or pending_bytes >= BATCH_BYTES:
                group, pending, pending_bytes = pending, [], 0
                await run_in_threadpool(_check_and_store, archive, target, group, study, outcome)
        group, pending = pending, []
        await run_in_threadpool(_check_and_store, archive, target, group, study, outcome)
    finally:
        for _number, part in pending:  # a body that broke off: its unchecked parts
            part.close()
    if number == 0:
        raise InvalidInput("the multipart body has no parts")
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
    """The PS3.18 answer as DICOM JSON, written directly: building a pydicom data set per
    instance and encoding it took a tenth of a small object's whole store."""
    answer: dict[str, Any] = {}
    studies = sorted(outcome.studies) or ([study] if study else [])
    if len(studies) == 1:
        answer[RETRIEVE_URL] = _attribute("UR", context.url(f"studies/{studies[0]}"))
    if outcome.failed:
        answer[FAILED_SOP_SEQUENCE] = _attribute(
            "SQ", *(_failed(*failure) for failure in outcome.failed)
        )
    if outcome.stored:
        answer[REFERENCED_SOP_SEQUENCE] = _attribute(
            "SQ", *(_referenced(context, result) for result in outcome.stored)
        )
    status = 409 if not outcome.stored else 202 if outcome.failed else 200
    headers = {}
    if outcome.failed:
        reason = outcome.failed[0][3].replace('"', "'").encode("ascii", "replace").decode()
        headers["Warning"] = f'299 kaapana "{reason[:300]}"'
    return Response(json.dumps(answer), status_code=status, media_type=DICOM_JSON, headers=headers)


RETRIEVE_URL: Final = "00081190"
FAILED_SOP_SEQUENCE: Final = "00081198"
REFERENCED_SOP_SEQUENCE: Final = "00081199"
_REFERENCED_SOP_CLASS: Final = "00081150"
_REFERENCED_SOP_INSTANCE: Final = "00081155"
_FAILURE_REASON: Final = "00081197"


def _attribute(vr: str, *values: Any) -> dict[str, Any]:
    """A DICOM JSON attribute (PS3.18 F.2.2); an empty one has no Value."""
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _referenced(context: DicomwebContext, result: StoreResult) -> dict[str, Any]:
    url = context.url(
        f"studies/{result.study_instance_uid}/series/{result.series_instance_uid}"
        f"/instances/{result.sop_instance_uid}"
    )
    return {
        _REFERENCED_SOP_CLASS: _attribute("UI", result.sop_class_uid),
        _REFERENCED_SOP_INSTANCE: _attribute("UI", result.sop_instance_uid),
        RETRIEVE_URL: _attribute("UR", url),
    }


def _failed(sop_class_uid: str, sop_instance_uid: str, code: int, _reason: str) -> dict[str, Any]:
    return {
        _REFERENCED_SOP_CLASS: _attribute("UI", *filter(None, [sop_class_uid])),
        _REFERENCED_SOP_INSTANCE: _attribute("UI", *filter(None, [sop_instance_uid])),
        _FAILURE_REASON: _attribute("US", code),
    }


@router.post("/studies", include_in_schema=False)
async def store_instances(request: Request, context: ContextDep) -> Response:
    return await _store(request, context, None)


@router.post("/studies/{study}", include_in_schema=False)
async def store_study_instances(study: str, request: Request, context: ContextDep) -> Response:
    return await _store(request, context, check_uid(study, field="study"))
