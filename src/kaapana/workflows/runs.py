"""Creating runs: the input selection (dataset, series list or catalog query) and the tasks."""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kaapana.db.models import Dataset, DatasetSeries, Run, RunInput, Series, SeriesProject, Task
from kaapana.errors import InvalidInput, NotFound
from kaapana.workflows.definitions import ModeValues, Workflow
from kaapana.workflows.states import RunStateValues, TaskStateValues

CONSOLE_CREATOR = "cli"
"""``created_by`` of runs started with ``kaapana run``, by whoever operates the installation."""
SelectSeries = Callable[[int, dict[str, Any]], Select[tuple[int]]]
"""Turns a catalog query of a project into a select of series pks (wired by the catalog)."""


def select_inputs(
    session: Session,
    *,
    project_pk: int,
    dataset: str | None,
    series: Sequence[str] | None,
    query: dict[str, Any] | None,
    select_series: SelectSeries | None,
    needs_series: bool = True,
) -> list[int]:
    """Series pks of exactly one selection, all visible to the project, in a stable order; a
    workflow that does not need series may also be given none."""
    chosen = [
        name
        for name, value in (("dataset", dataset), ("series", series), ("query", query))
        if value is not None
    ]
    if not chosen and not needs_series:
        return []
    if len(chosen) != 1:
        raise InvalidInput(
            f"give exactly one of 'dataset', 'series' and 'query', got {chosen or 'none'}"
        )
    if dataset is not None:
        found = session.scalar(
            select(Dataset.id).where(Dataset.project_pk == project_pk, Dataset.name == dataset)
        )
        if found is None:
            raise NotFound(f"dataset {dataset!r} not found in this project")
        pks = list(
            session.scalars(
                select(DatasetSeries.series_pk)
                .join(Series, Series.id == DatasetSeries.series_pk)
                .where(DatasetSeries.dataset_pk == found)
                .order_by(Series.series_instance_uid)
            )
        )
        if not pks:
            raise InvalidInput(f"dataset {dataset!r} holds no series")
        return pks
    if series is not None:
        uids = list(dict.fromkeys(series))
        if not uids:
            raise InvalidInput("'series' is empty: name at least one Series Instance UID")
        found_rows = session.execute(
            select(Series.series_instance_uid, Series.id)
            .join(SeriesProject, SeriesProject.series_pk == Series.id)
            .where(Series.series_instance_uid.in_(uids), SeriesProject.project_pk == project_pk)
        )
        rows = {uid: pk for uid, pk in found_rows}
        missing = [uid for uid in uids if uid not in rows]
        if missing:
            raise NotFound(f"series not found in this project: {', '.join(missing[:10])}")
        return [rows[uid] for uid in uids]
    assert query is not None
    if select_series is None:
        raise InvalidInput("catalog queries are not available on this installation")
    statement = select_series(project_pk, query)
    visible = select(SeriesProject.series_pk).where(SeriesProject.project_pk == project_pk)
    pks = list(dict.fromkeys(pk for pk in session.scalars(statement) if pk is not None))
    allowed = set(session.scalars(visible.where(SeriesProject.series_pk.in_(pks))))
    pks = [pk for pk in pks if pk in allowed]
    if not pks:
        raise InvalidInput(f"the query {query!r} matches no series in this project")
    return pks


def create_run(
    session: Session,
    *,
    workflow: Workflow,
    project_pk: int,
    params: dict[str, Any],
    series_pks: Sequence[int],
    created_by: str,
    rerun_of: int | None = None,
) -> Run:
    run = Run(
        project_pk=project_pk,
        workflow=workflow.name,
        version=workflow.version,
        definition_hash=workflow.definition_hash,
        params=params,
        state=RunStateValues.queued,
        created_by=created_by,
        rerun_of=rerun_of,
    )
    session.add(run)
    session.flush()
    session.add_all(
        RunInput(run_pk=run.id, series_pk=pk, position=i) for i, pk in enumerate(series_pks)
    )
    uids = {
        pk: uid
        for pk, uid in session.execute(
            select(Series.id, Series.series_instance_uid).where(Series.id.in_(series_pks))
        )
    }
    for name in workflow.order:
        step = workflow.steps[name]
        targets = [uids[pk] for pk in series_pks] if step.mode is ModeValues.per_series else [""]
        session.add_all(
            Task(run_pk=run.id, step=name, series_instance_uid=uid, state=TaskStateValues.pending)
            for uid in targets
        )
    session.flush()
    return run


__all__ = ["CONSOLE_CREATOR", "SelectSeries", "create_run", "select_inputs"]
