"""Zip downloads of series: a selection of a project's series, or a dataset's members.

The archive streams while it is written (see ``kaapana.catalog.series_zip``); the request is
checked and audited before the first byte leaves.
"""

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Select

from kaapana.api.deps import CurrentPrincipal, PlatformDep, client_address
from kaapana.api.routes.datasets import DatasetName, SeriesSelection, attachment
from kaapana.api.routes.projects import ProjectName, visible_project
from kaapana.auth.principal import Principal
from kaapana.auth.projects import scope_of
from kaapana.auth.roles import PermissionValues
from kaapana.catalog.series_zip import ZIP_MEDIA_TYPE, selected_series_ids, series_zip
from kaapana.db.models import Project
from kaapana.platform import Platform

router = APIRouter(prefix="/projects/{project}", tags=["downloads"])
_ZIP = {200: {"content": {ZIP_MEDIA_TYPE: {}}}}


def zip_download(
    platform: Platform,
    principal: Principal,
    project: Project,
    series_ids: Select[tuple[int]],
    *,
    filename: str,
    target: str,
    address: str,
    detail: dict[str, object] | None = None,
) -> StreamingResponse:
    platform.auth.audit.record(
        "series.download",
        actor=principal.username,
        target=target[:1024],
        project=project.name,
        address=address,
        detail={"format": "zip", **(detail or {})},
    )
    return StreamingResponse(
        series_zip(platform.engine, platform.store, series_ids),
        media_type=ZIP_MEDIA_TYPE,
        headers={"Content-Disposition": attachment(filename)},
    )


def selection_download(
    platform: Platform, principal: Principal, project: Project, uids: list[str], address: str
) -> StreamingResponse:
    ids = selected_series_ids(platform.engine, uids, scope_of(project))
    return zip_download(
        platform,
        principal,
        project,
        ids,
        filename=f"{project.name}-series.zip",
        target="series:" + ",".join(uids[:10]),
        address=address,
        detail={"series": len(set(uids))},
    )


@router.post(
    "/series/download",
    operation_id="download_project_series",
    response_class=StreamingResponse,
    responses=_ZIP,
)
def download_series(
    project: ProjectName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[SeriesSelection, Body()],
) -> StreamingResponse:
    """The series as one zip archive of their instances, as stored."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    return selection_download(platform, principal, found, body.series, client_address(request))


@router.get(
    "/datasets/{name}/download",
    operation_id="download_dataset",
    response_class=StreamingResponse,
    responses=_ZIP,
)
def download_dataset(
    project: ProjectName,
    name: DatasetName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
) -> StreamingResponse:
    """The dataset's member series as one zip archive of their instances, as stored."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    ids = platform.datasets.series_ids(found, name)
    return zip_download(
        platform,
        principal,
        found,
        ids,
        filename=f"{found.name}-{name}.zip",
        target=f"dataset:{name}",
        address=client_address(request),
    )
