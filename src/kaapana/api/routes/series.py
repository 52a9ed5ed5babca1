"""Per-series catalog results: thumbnail, validation and references, within the caller's scope."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.catalog import series_thumbnail, series_validation
from kaapana.catalog.references import SeriesReferences, series_references
from kaapana.catalog.thumbnails import THUMBNAIL_MEDIA_TYPE
from kaapana.catalog.validation import SeriesValidationResult

router = APIRouter(prefix="/series", tags=["series"])
SeriesUID = Annotated[str, Path(max_length=64)]


@router.get(
    "/{series_uid}/thumbnail",
    operation_id="get_series_thumbnail",
    response_class=Response,
    responses={200: {"content": {THUMBNAIL_MEDIA_TYPE: {}}}},
)
def thumbnail(
    series_uid: SeriesUID, platform: PlatformDep, principal: CurrentPrincipal
) -> Response:
    """The series' 256-pixel PNG thumbnail (made now if the series has none yet)."""
    png = series_thumbnail(
        engine=platform.engine,
        store=platform.store,
        results=platform.results,
        series_instance_uid=series_uid,
        projects=principal.scope,
    )
    return Response(
        png, media_type=THUMBNAIL_MEDIA_TYPE, headers={"Cache-Control": "private, max-age=300"}
    )


@router.get("/{series_uid}/validation", operation_id="get_series_validation")
def validation(
    series_uid: SeriesUID, platform: PlatformDep, principal: CurrentPrincipal
) -> SeriesValidationResult:
    """The series' validation: status `ok`, `warning` or `error`, with the findings."""
    return series_validation(
        engine=platform.engine,
        store=platform.store,
        series_instance_uid=series_uid,
        projects=principal.scope,
        dciodvfy_path=platform.settings.dciodvfy_path,
    )


@router.get("/{series_uid}/references", operation_id="get_series_references")
def references(
    series_uid: SeriesUID, platform: PlatformDep, principal: CurrentPrincipal
) -> SeriesReferences:
    """The image series this series references (SEG, RTSTRUCT, SR) and the visible series
    that reference it."""
    return series_references(
        engine=platform.engine, series_instance_uid=series_uid, projects=principal.scope
    )
