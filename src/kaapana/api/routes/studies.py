"""Browsing studies and series, filtered to the caller's projects."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.api.routes.projects import visible_project
from kaapana.archive.browse import Page, SeriesSummary, StudySummary, list_series, list_studies
from kaapana.archive.visibility import ProjectScope
from kaapana.auth.principal import Principal
from kaapana.auth.projects import scope_of
from kaapana.auth.roles import PermissionValues
from kaapana.platform import Platform

router = APIRouter(prefix="/studies", tags=["studies"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
InProject = Annotated[
    str | None,
    Query(max_length=64, description="Only this project's data (default: every visible one)."),
]


def project_scope(platform: Platform, principal: Principal, project: str | None) -> ProjectScope:
    """The caller's scope, or one project of it (the ``admin`` project sees everything)."""
    if project is None:
        return principal.scope
    return scope_of(visible_project(platform, principal, project, PermissionValues.read))


@router.get("", operation_id="list_studies")
def studies(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    offset: Offset = 0,
    project: InProject = None,
) -> Page[StudySummary]:
    """Studies the caller sees, newest first, with counts of the series it sees."""
    scope = project_scope(platform, principal, project)
    return list_studies(platform.engine, projects=scope, limit=limit, offset=offset)


@router.get("/{study_instance_uid}/series", operation_id="list_study_series")
def series(
    study_instance_uid: Annotated[str, Path(max_length=64)],
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    offset: Offset = 0,
    project: InProject = None,
) -> Page[SeriesSummary]:
    """The series of a study that the caller sees, in series-number order."""
    return list_series(
        platform.engine,
        study_instance_uid=study_instance_uid,
        projects=project_scope(platform, principal, project),
        limit=limit,
        offset=offset,
    )
