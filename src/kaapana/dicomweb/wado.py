"""WADO-RS (PS3.18 §10.4): instances, metadata, frames, bulk data, rendered images, thumbnails.

Instances stream from storage byte for byte when the client takes the stored transfer syntax;
metadata comes from the precomputed JSON; frames, bulk data and rendered images read the one
object they need. Every retrieval of patient data lands in the audit trail (once per caller,
study and kind per minute, so a viewer paging through frames leaves one line, not thousands).
"""

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from kaapana.archive.frames import OCTET_STREAM, decompress_frames, read_frames
from kaapana.archive.instances import StoredObject, stored_instances
from kaapana.archive.rendering import RENDERED_MEDIA_TYPES, Viewport, render, thumbnail
from kaapana.archive.transcode import can_transcode, to_explicit_vr_little_endian
from kaapana.catalog.thumbnails import THUMBNAIL_MEDIA_TYPE, series_thumbnail
from kaapana.catalog.thumbnails import THUMBNAIL_SIZE as STORED_THUMBNAIL_SIZE
from kaapana.dicomweb.context import (
    DICOM_JSON,
    ContextDep,
    DicomwebContext,
    absolute_bulk_data_text,
)
from kaapana.dicomweb.multipart import (
    OutgoingPart,
    multipart_content_type,
    multipart_stream,
    new_boundary,
)
from kaapana.dicomweb.negotiation import (
    ANY_SYNTAX,
    DICOM,
    accepts_media_type,
    dicom_transfer_syntax,
    frame_representation,
    rendered_media_type,
)
from kaapana.dicomweb.responses import MultipartResponse
from kaapana.dicomweb.uids import check_uid
from kaapana.errors import InvalidInput, NotAcceptable, NotFound

router = APIRouter()
AcceptHeader = Annotated[str | None, Header(alias="accept")]
MAX_FRAMES_PER_REQUEST: Final = 10_000
THUMBNAIL_SIZE: Final = 128


def _lookup(
    context: DicomwebContext,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    *,
    with_metadata: bool = False,
) -> list[StoredObject]:
    return stored_instances(
        context.platform.engine,
        study=check_uid(study, field="study"),
        series=check_uid(series, field="series") if series else None,
        sop=check_uid(sop, field="instance") if sop else None,
        projects=context.scope,
        with_metadata=with_metadata,
    )


def _instances(
    context: DicomwebContext,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    *,
    kind: str,
    with_metadata: bool = False,
) -> list[StoredObject]:
    """The instances under the path, with the retrieval audited."""
    found = _lookup(context, study, series, sop, with_metadata=with_metadata)
    context.platform.auth.audit.record_access(
        "retrieve",
        actor=context.principal.username,
        target=f"study:{study}",
        project=context.project.name if context.project else None,
        detail={"kind": kind, "series": series, "instance": sop},
    )
    return found


def _path(context: DicomwebContext, stored: StoredObject) -> str:
    path = context.platform.store.local_path(stored.storage_key)
    if path is None:
        raise NotFound(f"instance {stored.sop_instance_uid} has no stored file")
    return path


def _read(context: DicomwebContext, stored: StoredObject) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(_path(context, stored))


def _retrieve(context: DicomwebContext, accept: str | None, found: list[StoredObject]) -> Response:
    wanted = dicom_transfer_syntax(accept)
    if wanted not in (ANY_SYNTAX, ExplicitVRLittleEndian):
        refused = {s.transfer_syntax_uid for s in found if s.transfer_syntax_uid != wanted}
        if refused:
            raise NotAcceptable(
                f"instances are stored as {', '.join(sorted(refused))}; ask for "
                f"transfer-syntax=* or {ExplicitVRLittleEndian} (Explicit VR Little Endian)"
            )
    if wanted == ExplicitVRLittleEndian:
        stuck = {s.transfer_syntax_uid for s in found if not can_transcode(s.transfer_syntax_uid)}
        if stuck:
            raise NotAcceptable(
                f"cannot decode {', '.join(sorted(stuck))} here; ask for transfer-syntax=*"
            )

    if all(wanted in (ANY_SYNTAX, s.transfer_syntax_uid) for s in found):
        return MultipartResponse([_as_stored(context, s) for s in found], part_type=DICOM)

    def parts() -> Iterator[OutgoingPart]:
        for stored in found:
            if wanted == stored.transfer_syntax_uid:
                yield _as_stored(context, stored)
                continue
            body = to_explicit_vr_little_endian(Path(_path(context, stored)).read_bytes())
            part_type = f"{DICOM}; transfer-syntax={ExplicitVRLittleEndian}"
            yield OutgoingPart(part_type, body, context.url(stored.path))

    boundary = new_boundary()
    return StreamingResponse(
        multipart_stream(parts(), boundary=boundary),
        media_type=multipart_content_type(DICOM, boundary),
    )


def _as_stored(context: DicomwebContext, stored: StoredObject) -> OutgoingPart:
    part_type = f"{DICOM}; transfer-syntax={stored.transfer_syntax_uid}"
    return OutgoingPart(
        part_type, _path(context, stored), context.url(stored.path), size=stored.size
    )


@router.get("/studies/{study}", include_in_schema=False)
def retrieve_study(study: str, context: ContextDep, accept: AcceptHeader = None) -> Response:
    return _retrieve(context, accept, _instances(context, study, kind="instances"))


@router.get("/studies/{study}/series/{series}", include_in_schema=False)
def retrieve_series(
    study: str, series: str, context: ContextDep, accept: AcceptHeader = None
) -> Response:
    return _retrieve(context, accept, _instances(context, study, series, kind="instances"))


@router.get("/studies/{study}/series/{series}/instances/{sop}", include_in_schema=False)
def retrieve_instance(
    study: str, series: str, sop: str, context: ContextDep, accept: AcceptHeader = None
) -> Response:
    return _retrieve(context, accept, _instances(context, study, series, sop, kind="instances"))


def _metadata(context: DicomwebContext, found: list[StoredObject]) -> Response:
    documents = ",".join(
        absolute_bulk_data_text(stored.metadata or "{}", context.base_url) for stored in found
    )
    return Response(f"[{documents}]", media_type=DICOM_JSON)


@router.get("/studies/{study}/metadata", include_in_schema=False)
def study_metadata(study: str, context: ContextDep) -> Response:
    return _metadata(context, _instances(context, study, kind="metadata", with_metadata=True))


@router.get("/studies/{study}/series/{series}/metadata", include_in_schema=False)
def series_metadata(study: str, series: str, context: ContextDep) -> Response:
    found = _instances(context, study, series, kind="metadata", with_metadata=True)
    return _metadata(context, found)


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata", include_in_schema=False)
def instance_metadata(study: str, series: str, sop: str, context: ContextDep) -> Response:
    found = _instances(context, study, series, sop, kind="metadata", with_metadata=True)
    return _metadata(context, found)


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise InvalidInput(
            f"frame list must be comma-separated numbers, got {text[:64]!r}"
        ) from exc
    if len(numbers) > MAX_FRAMES_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_FRAMES_PER_REQUEST} frames per request")
    return numbers


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}", include_in_schema=False
)
def retrieve_frames(
    study: str, series: str, sop: str, frames: str, context: ContextDep, accept: AcceptHeader = None
) -> Response:
    numbers = _frame_numbers(frames)
    (stored,) = _instances(context, study, series, sop, kind="frames")
    choice = frame_representation(accept, stored.transfer_syntax_uid)
    ds = _read(context, stored)
    found = decompress_frames(ds, numbers) if choice.decompress else read_frames(ds, numbers)
    location = context.url(f"{stored.path}/frames/{frames}")
    parts = [OutgoingPart(choice.part_type, frame.data, location) for frame in found]
    return MultipartResponse(parts, part_type=choice.part_type.split(";")[0])


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag}", include_in_schema=False
)
def retrieve_bulk_data(
    study: str, series: str, sop: str, tag: str, context: ContextDep
) -> Response:
    """The value of a bulk data element named in the metadata; Pixel Data as its frames."""
    try:
        wanted = Tag(int(tag, 16)) if len(tag) == 8 else None
    except ValueError:
        wanted = None
    if wanted is None:
        raise InvalidInput(f"bulk data tag must be 8 hexadecimal digits, got {tag[:16]!r}")
    (stored,) = _instances(context, study, series, sop, kind="bulkdata")
    ds = _read(context, stored)
    if wanted == 0x7FE00010 and "PixelData" in ds:
        frames = read_frames(ds, list(range(1, stored.number_of_frames + 1)))
        part_type = frames[0].media_type if frames else OCTET_STREAM
        parts = [
            OutgoingPart(f"{f.media_type}; transfer-syntax={f.transfer_syntax_uid}", f.data)
            for f in frames
        ]
        return MultipartResponse(parts, part_type=part_type)
    value = _find_bulk(ds, wanted)
    if value is None:
        raise NotFound(f"instance {sop} has no bulk data element {tag}")
    return MultipartResponse([OutgoingPart(OCTET_STREAM, value)], part_type=OCTET_STREAM)


def _find_bulk(ds: Dataset, tag: Tag) -> bytes | None:
    """The first element ``tag`` in ``ds`` or its sequences, depth first, as raw bytes."""
    if tag in ds:
        value = ds[tag].value
        if isinstance(value, bytes):
            return value
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                found = _find_bulk(item, tag)
                if found is not None:
                    return found
    return None


def _window(raw: str | None) -> tuple[float, float] | None:
    if raw is None:
        return None
    parts = raw.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (IndexError, ValueError) as exc:
        raise InvalidInput(f"'window' must be center,width[,function], got {raw[:64]!r}") from exc
    return center, width


def _viewport(raw: str | None) -> Viewport | None:
    if raw is None:
        return None
    try:
        values = [int(v) if v else None for v in raw.split(",")]
    except ValueError as exc:
        raise InvalidInput(f"'viewport' must be vw,vh[,sx,sy,sw,sh], got {raw[:64]!r}") from exc
    if len(values) not in (2, 6) or values[0] is None or values[1] is None:
        raise InvalidInput(f"'viewport' must be vw,vh[,sx,sy,sw,sh], got {raw[:64]!r}")
    return Viewport(*values)  # type: ignore[arg-type]


def _rendered(
    context: DicomwebContext,
    found: list[StoredObject],
    request: Request,
    accept: str | None,
    *,
    frame: int | None = None,
) -> Response:
    media_type = rendered_media_type(accept, RENDERED_MEDIA_TYPES)
    params = request.query_params
    window = _window(params.get("window"))
    viewport = _viewport(params.get("viewport"))
    try:
        quality = int(params.get("quality", "90"))
    except ValueError as exc:
        raise InvalidInput(f"'quality' must be 1-100, got {params['quality'][:16]!r}") from exc

    def one(stored: StoredObject, number: int) -> bytes:
        return render(
            _read(context, stored),
            frame=number,
            window=window,
            viewport=viewport,
            media_type=media_type,
            quality=quality,
        )

    if len(found) == 1:
        return Response(one(found[0], frame or 1), media_type=media_type)
    parts = [OutgoingPart(media_type, one(stored, 1), context.url(stored.path)) for stored in found]
    return MultipartResponse(parts, part_type=media_type)


_INSTANCE = "/studies/{study}/series/{series}/instances/{sop}"


@router.get(_INSTANCE + "/rendered", include_in_schema=False)
def rendered_instance(
    study: str,
    series: str,
    sop: str,
    request: Request,
    context: ContextDep,
    accept: AcceptHeader = None,
) -> Response:
    found = _instances(context, study, series, sop, kind="rendered")
    return _rendered(context, found, request, accept)


@router.get(_INSTANCE + "/frames/{frame}/rendered", include_in_schema=False)
def rendered_frame(
    study: str,
    series: str,
    sop: str,
    frame: int,
    request: Request,
    context: ContextDep,
    accept: AcceptHeader = None,
) -> Response:
    found = _instances(context, study, series, sop, kind="rendered")
    return _rendered(context, found, request, accept, frame=frame)


@router.get("/studies/{study}/series/{series}/rendered", include_in_schema=False)
def rendered_series(
    study: str, series: str, request: Request, context: ContextDep, accept: AcceptHeader = None
) -> Response:
    found = _instances(context, study, series, kind="rendered")
    return _rendered(context, found, request, accept)


@router.get("/studies/{study}/rendered", include_in_schema=False)
def rendered_study(
    study: str, request: Request, context: ContextDep, accept: AcceptHeader = None
) -> Response:
    return _rendered(context, _instances(context, study, kind="rendered"), request, accept)


def _thumbnail(
    context: DicomwebContext, found: list[StoredObject], accept: str | None, size: int
) -> Response:
    """One image for the whole level: the middle instance of its first series.

    Thumbnails are previews for galleries and not audited, like the searches that list them.
    """
    media_type = rendered_media_type(accept, RENDERED_MEDIA_TYPES)
    first_series = found[0].series_instance_uid
    members = [s for s in found if s.series_instance_uid == first_series]
    middle = members[len(members) // 2]
    body = thumbnail(_read(context, middle), size=size, media_type=media_type)
    return Response(body, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


ThumbnailSize = Annotated[int, Query(alias="size", ge=16, le=1024)]


@router.get("/studies/{study}/thumbnail", include_in_schema=False)
def study_thumbnail(
    study: str,
    context: ContextDep,
    accept: AcceptHeader = None,
    size: ThumbnailSize = THUMBNAIL_SIZE,
) -> Response:
    return _thumbnail(context, _lookup(context, study), accept, size)


@router.get("/studies/{study}/series/{series}/thumbnail", include_in_schema=False)
def series_thumbnail_resource(
    study: str,
    series: str,
    context: ContextDep,
    accept: AcceptHeader = None,
    size: Annotated[int | None, Query(alias="size", ge=16, le=1024)] = None,
) -> Response:
    """The catalog's stored thumbnail when it fits the request (PNG at its size, or no size
    asked and PNG acceptable), else one rendered for the request."""
    found = _lookup(context, study, series)
    if size in (None, STORED_THUMBNAIL_SIZE) and accepts_media_type(accept, THUMBNAIL_MEDIA_TYPE):
        platform = context.platform
        body = series_thumbnail(
            engine=platform.engine,
            store=platform.store,
            results=platform.results,
            series_instance_uid=found[0].series_instance_uid,
            projects=context.scope,
        )
        return Response(
            body,
            media_type=THUMBNAIL_MEDIA_TYPE,
            headers={"Cache-Control": "private, max-age=300"},
        )
    return _thumbnail(context, found, accept, size or THUMBNAIL_SIZE)


@router.get(_INSTANCE + "/thumbnail", include_in_schema=False)
def instance_thumbnail(
    study: str,
    series: str,
    sop: str,
    context: ContextDep,
    accept: AcceptHeader = None,
    size: ThumbnailSize = THUMBNAIL_SIZE,
) -> Response:
    found = _lookup(context, study, series, sop)
    return _thumbnail(context, found, accept, size)
