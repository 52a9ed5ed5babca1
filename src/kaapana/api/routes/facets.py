"""Catalog facets: value counts and histograms over the series matching a query."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.api.routes.projects import visible_project
from kaapana.auth.roles import PermissionValues
from kaapana.catalog import Facet, FacetSpec, SeriesSummary, parse_query
from kaapana.catalog.facets import MAX_FACETS

router = APIRouter(prefix="/facets", tags=["catalog"])


class FacetsRequest(BaseModel):
    project: str = Field(max_length=64, description="Project name.")
    query: dict[str, Any] | None = Field(None, description="Catalog query restricting the series.")
    facets: list[FacetSpec] = Field(min_length=1, max_length=MAX_FACETS)


class FacetsAnswer(BaseModel):
    counts: SeriesSummary = Field(
        description="Patients, studies, series and instances of the matching series."
    )
    facets: list[Facet]


@router.post("", operation_id="catalog_facets")
def catalog_facets(
    platform: PlatformDep, principal: CurrentPrincipal, body: Annotated[FacetsRequest, Body()]
) -> FacetsAnswer:
    """Counts per value (top N + other), numeric and date histograms for the matching series."""
    project = visible_project(platform, principal, body.project, PermissionValues.read)
    query = parse_query(body.query)
    found = platform.catalog.facets(project_pk=project.id, query=query, specs=body.facets)
    return FacetsAnswer(
        counts=platform.catalog.summary(project_pk=project.id, query=query), facets=found
    )
