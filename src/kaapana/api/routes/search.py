"""Catalog search: series of a project matching a query, one page at a time."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.api.routes.projects import visible_project
from kaapana.auth.roles import PermissionValues
from kaapana.catalog import SearchPage, parse_query
from kaapana.catalog.search import MAX_LIMIT

router = APIRouter(prefix="/search", tags=["catalog"])


class SearchRequest(BaseModel):
    project: str = Field(max_length=64, description="Project name.")
    query: dict[str, Any] | None = Field(
        None, description="Catalog query: where, text, sort (see docs/catalog.md)."
    )
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=4096, description="next_cursor of the last page.")


@router.post("", operation_id="search_series")
def search_series(
    platform: PlatformDep, principal: CurrentPrincipal, body: Annotated[SearchRequest, Body()]
) -> SearchPage:
    """The project's series matching the query, with study and patient main attributes."""
    project = visible_project(platform, principal, body.project, PermissionValues.read)
    return platform.catalog.search(
        project_pk=project.id, query=parse_query(body.query), limit=body.limit, cursor=body.cursor
    )
