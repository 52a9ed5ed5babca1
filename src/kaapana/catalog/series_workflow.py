"""The catalog's service workflow: references, thumbnail and validation of each arriving series,
run by the workflow engine like any workflow.

The platform's system trigger rule ``series-media`` starts a run of ``series-media`` in the
series' project (the first that holds it) for every series that arrives, so the catalog's
per-series work is scheduled, retried, logged and resumed after a restart by the engine: a
series that arrives while no scheduler runs is processed when one starts. The task is platform
code: it opens the index and storage from the installation's settings (``TaskContext.settings``,
given to service workflows only), and hands the re-indexing of the series whose catalog rows
changed back to the scheduler side (``reindex-series``), where the catalog lives.
"""

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kaapana.catalog.catalog import Catalog
from kaapana.catalog.series_jobs import SeriesMedia, process_arrived_series
from kaapana.db.models import Run
from kaapana.errors import Forbidden, InvalidInput
from kaapana.workflows.actions import ActionHandler, ActionRequest
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow

SERIES_MEDIA = "series-media"
"""The service workflow and the system trigger rule that starts it."""
REINDEX_SERIES = "reindex-series"


def series_media(ctx: TaskContext) -> None:
    """References, thumbnail and validation of the task's series; then asks for the catalog
    rows of the series whose derived fields changed to be rebuilt."""
    if ctx.settings is None or ctx.series_instance_uid is None:
        raise InvalidInput(f"{SERIES_MEDIA} is a per-series service step: it needs settings")
    media = SeriesMedia.of(ctx.settings)
    try:
        changed = process_arrived_series(media, ctx.series_instance_uid)
    finally:
        media.engine.dispose()
    ctx.logger.info(
        "series %s processed; %d series to index", ctx.series_instance_uid, len(changed)
    )
    if changed:
        ctx.request(REINDEX_SERIES, series_pks=changed)
    ctx.progress(1)


SERIES_MEDIA_WORKFLOW = Workflow(
    name=SERIES_MEDIA,
    version="1.0",
    description="References, thumbnail and validation of each arriving series (the catalog's "
    "service, started by the platform for every series).",
    service=True,
    steps=[
        Step(name=SERIES_MEDIA, operator=series_media, mode=ModeValues.per_series, timeout=3600)
    ],
)


def reindex_series_handler(engine: Engine, catalog: Catalog) -> ActionHandler:
    """``reindex-series`` with ``series_pks``: rebuilds their catalog rows (idempotent); for
    runs of the service only, as it touches series beyond the task's input."""

    def handle(request: ActionRequest) -> str:
        with Session(engine) as session:
            run = session.get(Run, request.run_id)
            if run is None or run.workflow != SERIES_MEDIA:
                raise Forbidden(f"{REINDEX_SERIES}: only runs of {SERIES_MEDIA!r} ask for it")
        pks = request.payload.get("series_pks")
        if not isinstance(pks, Sequence) or not all(
            isinstance(pk, int) and not isinstance(pk, bool) for pk in pks
        ):
            raise InvalidInput(f"{REINDEX_SERIES}: 'series_pks' must be a list of integers")
        return f"{REINDEX_SERIES}: {catalog.reindex(list(pks))} series indexed"

    return handle


__all__ = [
    "REINDEX_SERIES",
    "SERIES_MEDIA",
    "SERIES_MEDIA_WORKFLOW",
    "reindex_series_handler",
    "series_media",
]
