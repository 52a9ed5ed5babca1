"""Datasets of a project (cohorts), their members and manifests, and bulk series deletion.

Readers of a project list datasets, page through members and export manifests; writers create
and change datasets; principal investigators (``manage``) delete series from the project.
Members are taken out with ``POST .../series/remove`` rather than DELETE with a body, which
proxies and HTTP clients do not reliably pass on.
"""

from datetime import datetime
from typing import Annotated, Any, Self
from urllib.parse import quote

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from kaapana.api.deps import CurrentPrincipal, PlatformDep, client_address
from kaapana.api.routes.projects import ProjectName, visible_project
from kaapana.archive.browse import Page
from kaapana.auth.roles import PermissionValues
from kaapana.catalog import DatasetInfo, DatasetKindValues, DatasetMember, ManifestFormatValues
from kaapana.catalog.datasets import MAX_DESCRIPTION

router = APIRouter(prefix="/projects/{project}", tags=["datasets"])
DatasetName = Annotated[str, Path(max_length=64, description="Dataset name.")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
MAX_SERIES_PER_REQUEST = 50_000
SeriesUids = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=MAX_SERIES_PER_REQUEST, description="SeriesInstanceUIDs."),
]
_MEDIA_TYPES = {ManifestFormatValues.csv: "text/csv", ManifestFormatValues.json: "application/json"}


class DatasetCreate(BaseModel):
    """``selection`` takes ``series``; ``snapshot`` and ``live`` take a catalog ``query``."""

    name: str = Field(max_length=64)
    description: str = Field("", max_length=MAX_DESCRIPTION)
    kind: DatasetKindValues = DatasetKindValues.selection
    series: SeriesUids | None = None
    query: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Self:
        if self.kind is DatasetKindValues.selection and self.query is not None:
            raise ValueError(
                "'query' is for snapshot and live datasets; a selection takes 'series'"
            )
        if self.kind is not DatasetKindValues.selection and self.series is not None:
            raise ValueError(f"a {self.kind.value} dataset takes 'query', not 'series'")
        return self


class DatasetUpdate(BaseModel):
    name: str | None = Field(None, max_length=64, description="New name (rename).")
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


class SeriesSelection(BaseModel):
    series: SeriesUids


class DatasetPublic(BaseModel):
    project: str
    name: str
    description: str
    kind: DatasetKindValues
    query: dict[str, Any] | None
    created_at: datetime
    patients: int
    studies: int
    series: int
    instances: int
    modalities: dict[str, int] = Field(description="Number of series per modality.")


class MembershipChange(BaseModel):
    changed: int = Field(description="How many series were added or taken out.")
    dataset: DatasetPublic


class SeriesRemoval(BaseModel):
    series_unlinked: int = Field(description="Series taken out of the project.")
    series_deleted: int = Field(description="Of those, series no project holds: deleted.")
    instances_deleted: int


def _public(info: DatasetInfo) -> DatasetPublic:
    return DatasetPublic(
        project=info.project,
        name=info.name,
        description=info.description,
        kind=info.kind,
        query=info.query,
        created_at=info.created_at,
        **info.summary.model_dump(),
    )


def attachment(filename: str) -> str:
    """RFC 6266: an ASCII fallback and the exact UTF-8 name (dataset names may be any text)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/datasets", operation_id="list_datasets")
def list_datasets(
    project: ProjectName, platform: PlatformDep, principal: CurrentPrincipal
) -> list[DatasetPublic]:
    """The project's datasets by name, each with its counts."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    return [_public(info) for info in platform.datasets.list(found)]


@router.post("/datasets", operation_id="create_dataset", status_code=201)
def create_dataset(
    project: ProjectName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[DatasetCreate, Body()],
) -> DatasetPublic:
    """Create a selection (``series``), a snapshot of a query, or a live query."""
    found = visible_project(platform, principal, project, PermissionValues.write)
    common: dict[str, Any] = {
        "description": body.description,
        "actor": principal.username,
        "address": client_address(request),
    }
    datasets = platform.datasets
    if body.kind is DatasetKindValues.selection:
        info = datasets.create(found, body.name, series_instance_uids=body.series or [], **common)
    elif body.kind is DatasetKindValues.snapshot:
        info = datasets.create_snapshot(found, body.name, query=body.query or {}, **common)
    else:
        info = datasets.create_live(found, body.name, query=body.query or {}, **common)
    return _public(info)


@router.get("/datasets/{name}", operation_id="get_dataset")
def get_dataset(
    project: ProjectName, name: DatasetName, platform: PlatformDep, principal: CurrentPrincipal
) -> DatasetPublic:
    found = visible_project(platform, principal, project, PermissionValues.read)
    return _public(platform.datasets.get(found, name))


@router.patch("/datasets/{name}", operation_id="update_dataset")
def update_dataset(
    project: ProjectName,
    name: DatasetName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[DatasetUpdate, Body()],
) -> DatasetPublic:
    """Rename and/or describe the dataset."""
    found = visible_project(platform, principal, project, PermissionValues.write)
    info = platform.datasets.update(
        found,
        name,
        new_name=body.name,
        description=body.description,
        actor=principal.username,
        address=client_address(request),
    )
    return _public(info)


@router.delete("/datasets/{name}", operation_id="delete_dataset", status_code=204)
def delete_dataset(
    project: ProjectName,
    name: DatasetName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
) -> None:
    """Forget the dataset; its series stay in the project."""
    found = visible_project(platform, principal, project, PermissionValues.write)
    platform.datasets.delete(found, name, actor=principal.username, address=client_address(request))


@router.get("/datasets/{name}/series", operation_id="list_dataset_series")
def list_dataset_series(
    project: ProjectName,
    name: DatasetName,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[DatasetMember]:
    """The member series, by patient, study date and series number."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    return platform.datasets.members(found, name, limit=limit, offset=offset)


@router.post("/datasets/{name}/series", operation_id="add_dataset_series")
def add_dataset_series(
    project: ProjectName,
    name: DatasetName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[SeriesSelection, Body()],
) -> MembershipChange:
    """Add series of the project; one UID the project does not hold fails the whole request."""
    found = visible_project(platform, principal, project, PermissionValues.write)
    added = platform.datasets.add(
        found, name, body.series, actor=principal.username, address=client_address(request)
    )
    return MembershipChange(changed=added, dataset=_public(platform.datasets.get(found, name)))


@router.post("/datasets/{name}/series/remove", operation_id="remove_dataset_series")
def remove_dataset_series(
    project: ProjectName,
    name: DatasetName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[SeriesSelection, Body()],
) -> MembershipChange:
    """Take series out of the dataset (they stay in the project)."""
    found = visible_project(platform, principal, project, PermissionValues.write)
    removed = platform.datasets.remove(
        found, name, body.series, actor=principal.username, address=client_address(request)
    )
    return MembershipChange(changed=removed, dataset=_public(platform.datasets.get(found, name)))


@router.get(
    "/datasets/{name}/manifest",
    operation_id="get_dataset_manifest",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def get_dataset_manifest(
    project: ProjectName,
    name: DatasetName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    format: ManifestFormatValues = ManifestFormatValues.csv,
) -> StreamingResponse:
    """One row per member series; the JSON form lists every instance with its sha256."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    chunks = platform.datasets.manifest(
        found, name, format=format, actor=principal.username, address=client_address(request)
    )
    filename = f"{found.name}-{name}.{format.value}"
    return StreamingResponse(
        chunks,
        media_type=_MEDIA_TYPES[format],
        headers={"Content-Disposition": attachment(filename)},
    )


@router.post("/series/delete", operation_id="delete_project_series")
def delete_project_series(
    project: ProjectName,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[SeriesSelection, Body()],
) -> SeriesRemoval:
    """Delete series from the project, and from the archive where no other project holds them."""
    found = visible_project(platform, principal, project, PermissionValues.manage)
    removal = platform.series_deletion.delete(
        found, body.series, actor=principal.username, address=client_address(request)
    )
    return SeriesRemoval(
        series_unlinked=removal.series_unlinked,
        series_deleted=removal.series_deleted,
        instances_deleted=removal.instances_deleted,
    )
