"""Catalog field discovery: which fields a project's series have, and their values."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.api.routes.projects import visible_project
from kaapana.auth.roles import PermissionValues
from kaapana.catalog.discovery import MAX_VALUES, FieldInfo, ValueCount

router = APIRouter(prefix="/fields", tags=["catalog"])
ProjectParam = Annotated[str, Query(max_length=64, description="Project name.")]
Prefix = Annotated[str, Query(max_length=255, description="Case-insensitive prefix.")]


@router.get("", operation_id="list_fields")
def list_fields(
    project: ProjectParam, platform: PlatformDep, principal: CurrentPrincipal, prefix: Prefix = ""
) -> list[FieldInfo]:
    """Fields present in the project, with VR, kind, number of series and example values."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    return platform.catalog.fields(project_pk=found.id, prefix=prefix)


@router.get("/{field}/values", operation_id="list_field_values")
def list_field_values(
    field: Annotated[str, Path(max_length=255, description="Field name, as in queries.")],
    project: ProjectParam,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    prefix: Prefix = "",
    limit: Annotated[int, Query(ge=1, le=MAX_VALUES)] = 20,
) -> list[ValueCount]:
    """The most frequent values of a field starting with ``prefix`` (autocomplete)."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    return platform.catalog.values(project_pk=found.id, field=field, prefix=prefix, limit=limit)
