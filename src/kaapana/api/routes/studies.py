"""Browsing studies and series, filtered to the caller's projects."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.archive.browse import Page, SeriesSummary, StudySummary, list_series, list_studies

router = APIRouter(prefix="/studies", tags=["studies"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("", operation_id="list_studies")
def studies(
    platform: PlatformDep, principal: CurrentPrincipal, limit: Limit = 100, offset: Offset = 0
) -> Page[StudySummary]:
    """Studies the caller sees, newest first, with counts of the series it sees."""
    return list_studies(platform.engine, projects=principal.scope, limit=limit, offset=offset)


@router.get("/{study_instance_uid}/series", operation_id="list_study_series")
def series(
    study_instance_uid: Annotated[str, Path(max_length=64)],
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SeriesSummary]:
    """The series of a study that the caller sees, in series-number order."""
    return list_series(
        platform.engine,
        study_instance_uid=study_instance_uid,
        projects=principal.scope,
        limit=limit,
        offset=offset,
    )
