"""Uploads that are not single DICOM objects: zip archives, and NIfTI files for import-nifti.

DICOM files go through STOW-RS. A zip archive is streamed to a file under the data folder and
imported as ``kaapana import`` would (members that are not DICOM are skipped and counted). NIfTI
files arrive as one ``multipart/related`` body whose parts name their relative path in
``Content-Location``; they are kept in an upload folder under the data folder, and the
import-nifti workflow is started on it (a ``metadata.json`` with one case per image is written
when the upload brings neither that nor an nnU-Net ``dataset.json``).
"""

import json
import re
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kaapana.api.deps import CurrentPrincipal, PlatformDep, client_address
from kaapana.api.routes.projects import ProjectName, visible_project
from kaapana.archive.importer import ImportSource, import_paths
from kaapana.auth.roles import PermissionValues
from kaapana.dicomweb.multipart import read_parts
from kaapana.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from kaapana.workflows.views import RunDetailView

router = APIRouter(prefix="/projects/{project}", tags=["imports"])
NIFTI_WORKFLOW = "import-nifti"
MAX_LISTED_OUTCOMES = 10_000
_CHUNK = 1 << 20
_NIFTI = re.compile(r"\.nii(\.gz)?$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class ImportOutcome(BaseModel):
    name: str = Field(description="The member's path inside the archive.")
    outcome: str = Field(description="accepted, duplicate, replaced, rejected or skipped.")
    reason: str = ""


class ImportAnswer(BaseModel):
    accepted: int
    duplicates: int
    replaced: int
    skipped: int
    rejected: int
    outcomes: list[ImportOutcome] = Field(
        description=f"Per member, the first {MAX_LISTED_OUTCOMES}."
    )


def _uploads(request: Request) -> Path:
    folder: Path = request.app.state.platform.settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; this server takes at most {limit}")


@router.post("/imports", operation_id="import_zip", status_code=200)
async def import_zip(
    project: ProjectName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    content_type: Annotated[str, Header()] = "",
) -> ImportAnswer:
    """Import the DICOM objects of a zip archive (the body, ``application/zip``)."""
    found = await run_in_threadpool(
        visible_project, platform, principal, project, PermissionValues.write
    )
    if content_type.split(";")[0].strip().lower() not in (
        "application/zip",
        "application/x-zip-compressed",
    ):
        raise UnsupportedMediaType(
            f"send the archive as application/zip, not {content_type[:64]!r}"
        )
    limit = platform.settings.stow_max_bytes
    _check_length(request, limit)
    with tempfile.NamedTemporaryFile(dir=_uploads(request), suffix=".zip") as spool:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"the archive exceeds {limit} bytes")
            await run_in_threadpool(spool.write, chunk)
        await run_in_threadpool(spool.flush)
        prefix = f"{spool.name}!/"
        outcomes: list[ImportOutcome] = []

        def note(source: ImportSource, outcome: str, reason: str) -> None:
            if len(outcomes) < MAX_LISTED_OUTCOMES:
                outcomes.append(
                    ImportOutcome(
                        name=source.name.removeprefix(prefix), outcome=outcome, reason=reason
                    )
                )

        if not await run_in_threadpool(zipfile.is_zipfile, spool.name):
            raise InvalidInput("the body is not a zip archive (no central directory found)")
        target = await run_in_threadpool(platform.archive.target, found.name)
        try:
            report = await run_in_threadpool(
                lambda: import_paths(
                    platform.archive, [Path(spool.name)], target, workers=0, on_progress=note
                )
            )
        except zipfile.BadZipFile as exc:
            raise InvalidInput(f"the zip archive is damaged: {exc}") from exc
    await run_in_threadpool(
        platform.auth.audit.record,
        "import",
        actor=principal.username,
        target="zip",
        project=found.name,
        address=client_address(request),
        outcome="success" if not report.rejected else "partial",
        detail={"via": "upload", "accepted": report.accepted, "rejected": len(report.rejected)},
    )
    return ImportAnswer(
        accepted=report.accepted,
        duplicates=report.duplicates,
        replaced=report.replaced,
        skipped=report.skipped,
        rejected=len(report.rejected),
        outcomes=outcomes,
    )


def _relative(location: str | None, number: int) -> PurePosixPath:
    """The part's path inside the upload, from ``Content-Location``; nothing may leave it."""
    if not location:
        raise InvalidInput(f"part {number} has no Content-Location naming its file")
    parts = [p for p in PurePosixPath(location.replace("\\", "/")).parts if p not in ("", "/")]
    if not parts or any(p in (".", "..") for p in parts):
        raise InvalidInput(
            f"part {number}: Content-Location {location[:128]!r} is not a relative path"
        )
    return PurePosixPath(*(_UNSAFE.sub("_", p) for p in parts))


def _write_metadata(folder: Path) -> None:
    """One case per NIfTI image when the upload describes none itself."""
    if (folder / "metadata.json").is_file() or (folder / "dataset.json").is_file():
        return
    images = sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if _NIFTI.search(p.name)
    )
    if not images:
        raise InvalidInput("the upload holds no .nii or .nii.gz file")
    cases = [
        {
            "image": image,
            "patient_id": _NIFTI.sub("", PurePosixPath(image).name)[:64] or "nifti",
            "series_description": _NIFTI.sub("", PurePosixPath(image).name)[:64],
        }
        for image in images
    ]
    (folder / "metadata.json").write_text(json.dumps({"cases": cases}))


@router.post("/nifti-imports", operation_id="import_nifti_upload", status_code=201)
async def import_nifti_upload(
    project: ProjectName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    content_type: Annotated[str, Header()] = "",
) -> RunDetailView:
    """Keep the NIfTI files (parts of a ``multipart/related`` body) and start import-nifti."""
    found = await run_in_threadpool(
        visible_project, platform, principal, project, PermissionValues.write
    )
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/related") or match is None:
        raise UnsupportedMediaType("send the files as multipart/related with a boundary")
    limit = platform.settings.stow_max_bytes
    _check_length(request, limit)
    folder = _uploads(request) / f"nifti-{uuid.uuid4().hex}"
    folder.mkdir()
    try:
        number = 0
        async for part in read_parts(
            request.stream(), boundary=match.group(1), max_body_bytes=limit
        ):
            number += 1
            with part:
                path = folder / _relative(part.headers.get("Content-Location"), number)
                path.parent.mkdir(parents=True, exist_ok=True)

                def save(path: Path = path, source: object = part) -> None:
                    with path.open("wb") as out:
                        shutil.copyfileobj(source.open(), out, _CHUNK)  # type: ignore[attr-defined]

                await run_in_threadpool(save)
        await run_in_threadpool(_write_metadata, folder)
        run = await run_in_threadpool(
            lambda: platform.workflows.start_run(
                project_pk=found.id,
                workflow=NIFTI_WORKFLOW,
                params={"source_dir": str(folder)},
                dataset=None,
                series=None,
                query=None,
                created_by=principal.username,
            )
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    await run_in_threadpool(
        platform.auth.audit.record,
        "run.create",
        actor=principal.username,
        target=f"run:{run.id}",
        project=found.name,
        address=client_address(request),
        detail={"workflow": run.workflow, "definition_hash": run.definition_hash, "via": "upload"},
    )
    return run
