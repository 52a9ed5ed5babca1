"""Tags: a project's labels on series; listed with counts, added and removed in bulk."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from kaapana.api.deps import CurrentPrincipal, PlatformDep, client_address
from kaapana.api.routes.projects import visible_project
from kaapana.auth.roles import PermissionValues
from kaapana.catalog.tags import MAX_SERIES_PER_CALL, TagChange, TagCount

router = APIRouter(prefix="/tags", tags=["catalog"])


class TagUpdate(BaseModel):
    project: str = Field(max_length=64, description="Project name.")
    series_instance_uids: list[str] = Field(min_length=1, max_length=MAX_SERIES_PER_CALL)
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)


@router.get("", operation_id="list_tags")
def list_tags(
    project: Annotated[str, Query(max_length=64, description="Project name.")],
    platform: PlatformDep,
    principal: CurrentPrincipal,
) -> list[TagCount]:
    """The project's tags with how many series carry each, most used first."""
    found = visible_project(platform, principal, project, PermissionValues.read)
    return platform.catalog.tags(project_pk=found.id)


@router.post("", operation_id="change_tags")
def change_tags(
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[TagUpdate, Body()],
) -> TagChange:
    """Add and remove tags on many series at once (all or nothing)."""
    found = visible_project(platform, principal, body.project, PermissionValues.write)
    change = platform.catalog.tag(
        project_pk=found.id,
        series_instance_uids=body.series_instance_uids,
        add=body.add,
        remove=body.remove,
    )
    platform.auth.audit.record(
        "catalog.tag",
        actor=principal.username,
        target=f"project:{found.name}",
        project=found.name,
        address=client_address(request),
        detail={"add": body.add, "remove": body.remove, "series": change.series},
    )
    return change
