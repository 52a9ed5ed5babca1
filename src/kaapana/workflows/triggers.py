"""Trigger rules: start a workflow when a series arrives in a project and matches a query.

Rules are rows (``trigger_rules``), evaluated on each ``SeriesArrived`` in the process that runs
the series monitor (``kaapana serve``). Whether a series matches a rule's catalog query is the
catalog's answer (``matches_query``); without a catalog, only rules without a query (every series
of the project) can be created. A failing rule is logged and never stops the others.

System rules are the platform's own (``add_system``, e.g. the catalog's thumbnails and validation
of every arriving series): evaluated first, on the same path, listed to administrators with
``system``, and never removed, disabled or shadowed by a user's rule. Only they start service
workflows.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, select

from kaapana.archive.events import SeriesArrived
from kaapana.archive.visibility import ProjectScope
from kaapana.auth.roles import PermissionValues
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Project, Run, RunInput, Series, SeriesProject, TriggerRule
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.workflows.definitions import Workflow, check_name

log = logging.getLogger(__name__)

_CREATED_BY = "trigger:"
"""Prefix of the ``created_by`` of the runs a rule starts, before the rule's name."""

MatchesQuery = Callable[[int, int, dict[str, Any]], bool]
"""(project pk, series pk, catalog query) -> does the series match (wired by the catalog)."""
StartRun = Callable[..., Any]
SERIES_OWN_PROJECT = "(the series' project)"
"""The project a system rule lists: its runs go to the first project holding the series."""


class TriggerView(BaseModel):
    project: str
    name: str
    workflow: str
    query: dict[str, Any] | None
    params: dict[str, Any]
    enabled: bool
    created_by: str
    created_at: datetime | None
    """None for a system rule, which lives in the platform's code, not in the database."""
    system: bool = False


@dataclass(frozen=True, slots=True)
class _Rule:
    """What evaluating a rule needs, whether a row or a system rule."""

    name: str
    project_pk: int | None
    """None for a system rule: the project of the arriving series (the first that holds it)."""
    workflow: str
    query: dict[str, Any] | None
    params: dict[str, Any]


class Triggers:
    def __init__(
        self,
        *,
        engine: Engine,
        workflow_of: Callable[[str], Workflow],
        start_run: StartRun,
        matches_query: MatchesQuery | None,
    ) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._workflow_of = workflow_of
        self._start_run = start_run
        self._matches_query = matches_query
        self._system: list[_Rule] = []

    def add_system(self, *, name: str, workflow: str) -> None:
        """A rule of the platform: ``workflow`` (a service workflow) for every arriving series,
        in the series' own project (the first that holds it), so that each series gets one
        run, whichever projects hold it."""
        check_name("trigger name", name)
        if not self._workflow_of(workflow).service:
            raise InvalidInput(f"system rule {name!r}: workflow {workflow!r} is no service")
        self._system.append(_Rule(name, None, workflow, None, {}))

    def _refuse_system(self, name: str, verb: str) -> None:
        if any(r.name == name for r in self._system):
            raise Conflict(
                f"trigger rule {name!r} is the platform's own (system rule); it cannot be {verb}"
            )

    def add(
        self,
        *,
        project_pk: int,
        name: str,
        workflow: str,
        query: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        created_by: str = "",
    ) -> TriggerView:
        check_name("trigger name", name)
        self._refuse_system(name, "replaced")
        definition = self._workflow_of(workflow)
        if definition.service:
            raise InvalidInput(
                f"workflow {workflow!r} is a service of the platform; only the platform starts it"
            )
        if definition.permission is PermissionValues.manage:
            raise InvalidInput(
                f"workflow {workflow!r} needs manage access to the project (it deletes data); "
                "a trigger does not start it"
            )
        checked = definition.validate_params(params or {})
        if query is not None:
            if self._matches_query is None:
                raise InvalidInput(
                    "catalog queries are not available on this installation: a rule without "
                    "'query' starts the workflow for every series arriving in the project"
                )
            # A dry match against no series: the catalog refuses a query it cannot run now,
            # not at the first arrival.
            self._matches_query(project_pk, 0, query)
        with write_transaction(self._engine) as session:
            exists = session.scalar(
                select(TriggerRule.id).where(
                    TriggerRule.project_pk == project_pk, TriggerRule.name == name
                )
            )
            if exists is not None:
                raise Conflict(f"trigger rule {name!r} exists already in this project")
            rule = TriggerRule(
                project_pk=project_pk,
                name=name,
                workflow=workflow,
                query=query,
                params=checked,
                created_by=created_by,
            )
            session.add(rule)
            session.flush()
            return _view(rule, _project_name(session, project_pk))

    def rules(self, *, scope: ProjectScope = None) -> list[TriggerView]:
        with self._sessions() as session:
            statement = select(TriggerRule, Project.name).join(
                Project, Project.id == TriggerRule.project_pk
            )
            if scope is not None:
                statement = statement.where(TriggerRule.project_pk.in_(sorted(scope)))
            rows = session.execute(statement.order_by(Project.name, TriggerRule.name)).all()
            system = [
                TriggerView(
                    project=SERIES_OWN_PROJECT,
                    name=rule.name,
                    workflow=rule.workflow,
                    query=rule.query,
                    params=rule.params,
                    enabled=True,
                    created_by="system",
                    created_at=None,
                    system=True,
                )
                for rule in self._system
                if scope is None
            ]
            return system + [_view(rule, project) for rule, project in rows]

    def set_enabled(self, *, project_pk: int, name: str, enabled: bool) -> TriggerView:
        self._refuse_system(name, "disabled or enabled")
        with write_transaction(self._engine) as session:
            rule = _rule(session, project_pk, name)
            rule.enabled = enabled
            return _view(rule, _project_name(session, project_pk))

    def remove(self, *, project_pk: int, name: str) -> None:
        self._refuse_system(name, "removed")
        with write_transaction(self._engine) as session:
            session.delete(_rule(session, project_pk, name))

    def on_series_arrived(self, event: SeriesArrived) -> list[int]:
        """Start the workflow of every enabled rule the series matches; returns the run ids."""
        with self._sessions() as session:
            series_pk = session.scalar(
                select(Series.id).where(Series.series_instance_uid == event.series_instance_uid)
            )
            if series_pk is None:
                return []
            rows = session.scalars(
                select(TriggerRule)
                .join(SeriesProject, SeriesProject.project_pk == TriggerRule.project_pk)
                .where(SeriesProject.series_pk == series_pk, TriggerRule.enabled.is_(True))
                .order_by(TriggerRule.id)
            ).all()
            own = session.scalar(
                select(SeriesProject.project_pk)
                .where(SeriesProject.series_pk == series_pk)
                .order_by(SeriesProject.project_pk)
                .limit(1)
            )
            system = [] if own is None else [replace(r, project_pk=own) for r in self._system]
            rules = system + [
                _Rule(row.name, row.project_pk, row.workflow, row.query, row.params) for row in rows
            ]
            if event.replayed:  # the cut-short announcement may have started some already
                done = _started_for(session, series_pk)
                rules = [r for r in rules if (r.name, r.project_pk) not in done]
        started = []
        for rule in rules:
            try:
                if rule.query is not None and (
                    self._matches_query is None
                    or not self._matches_query(rule.project_pk, series_pk, rule.query)
                ):
                    continue
                run = self._start_run(
                    project_pk=rule.project_pk,
                    workflow=rule.workflow,
                    params=rule.params,
                    series=[event.series_instance_uid],
                    created_by=f"{_CREATED_BY}{rule.name}",
                )
                log.info(
                    "trigger %s started run %d for series %s",
                    rule.name,
                    run.id,
                    event.series_instance_uid,
                )
                started.append(run.id)
            except Exception:
                log.exception("trigger rule %s failed for %s", rule.name, event.series_instance_uid)
        return started


def _started_for(session: Any, series_pk: int) -> set[tuple[str, int]]:
    """(rule name, project) of the runs rules started for the series since it became stable."""
    rows = session.execute(
        select(Run.created_by, Run.project_pk)
        .join(RunInput, RunInput.run_pk == Run.id)
        .join(Series, Series.id == RunInput.series_pk)
        .where(
            RunInput.series_pk == series_pk,
            Run.created_by.startswith(_CREATED_BY, autoescape=True),
            Run.created_at >= Series.stable_at,
        )
    )
    return {(created_by.removeprefix(_CREATED_BY), project_pk) for created_by, project_pk in rows}


def _rule(session: Any, project_pk: int, name: str) -> TriggerRule:
    rule = session.scalar(
        select(TriggerRule).where(TriggerRule.project_pk == project_pk, TriggerRule.name == name)
    )
    if rule is None:
        raise NotFound(f"trigger rule {name!r} not found in this project")
    return rule


def _project_name(session: Any, project_pk: int) -> str:
    project = session.get(Project, project_pk)
    return project.name if project else ""


def _view(rule: TriggerRule, project: str) -> TriggerView:
    return TriggerView(
        project=project,
        name=rule.name,
        workflow=rule.workflow,
        query=rule.query,
        params=rule.params,
        enabled=rule.enabled,
        created_by=rule.created_by,
        created_at=rule.created_at,
    )


__all__ = ["MatchesQuery", "TriggerView", "Triggers"]
