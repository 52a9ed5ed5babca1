"""``Engine``: the one entry to workflows: definitions, runs, logs, artifacts, provenance.

Any process may create, cancel or retry runs (they are rows); exactly one process per
installation schedules them: the first to call ``start`` takes ``workflows.lock`` in the data
dir (``kaapana serve``, or ``kaapana run --wait`` when no server runs). The others leave the work
to it, which notices new rows within half a second.
"""

import fcntl
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import select

from kaapana.archive import Archive
from kaapana.archive.nodes import Nodes
from kaapana.archive.visibility import ProjectScope
from kaapana.auth.roles import PermissionValues
from kaapana.config import Settings
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Artifact, Project, Run, RunInput, Series, Task, utcnow
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.storage import ObjectStore
from kaapana.workflows.actions import Actions
from kaapana.workflows.context import read_progress
from kaapana.workflows.definitions import Workflow
from kaapana.workflows.executor import DaskExecutor
from kaapana.workflows.gates import Gates
from kaapana.workflows.manifest import MANIFEST_NAME, diff_manifests
from kaapana.workflows.registry import Registry
from kaapana.workflows.resolvers import Resolvers
from kaapana.workflows.runs import SelectSeries, create_run, select_inputs
from kaapana.workflows.scheduler import ReferencedSeries, Scheduler, gates_of, write_manifest
from kaapana.workflows.states import (
    ACTIVE_RUN_STATES,
    DONE_TASK_STATES,
    RETRYABLE_TASK_STATES,
    RunStateValues,
    TaskStateValues,
)
from kaapana.workflows.triggers import MatchesQuery, Triggers
from kaapana.workflows.views import (
    ArtifactView,
    LoadErrorView,
    RunDetailView,
    RunView,
    StepView,
    TaskView,
    WorkflowView,
)
from kaapana.workflows.workspace import Workspace

_DONE_RUN_STATES = frozenset(RunStateValues) - ACTIVE_RUN_STATES


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        engine: SqlEngine,
        archive: Archive,
        results: ObjectStore,
        select_series: SelectSeries | None = None,
        matches_query: MatchesQuery | None = None,
        referenced_series: ReferencedSeries | None = None,
    ) -> None:
        """``referenced_series`` reads the series one instance references, for steps with
        ``references``; without it such steps see no referenced series."""
        self.settings = settings
        self._referenced_series = referenced_series
        self._engine = engine
        self._sessions = session_factory(engine)
        self._archive = archive
        self._results = results
        self._select_series = select_series
        self.registry = Registry(settings)
        # Handlers of what tasks ask of the platform; registered by the composition root.
        self.actions = Actions()
        # Gates that gated steps wait for before each execution; same root fills it.
        self.gates = Gates()
        # Look-ups of parameters when a run is created (a model's file); same root fills it.
        self.resolvers = Resolvers()
        self.workspace = Workspace(settings.resolved_work_dir)
        self._executor = DaskExecutor(settings)
        self._scheduler: Scheduler | None = None
        self._run_ended = threading.Condition()
        self._lock_file: IO[bytes] | None = None
        self.triggers = Triggers(
            engine=engine,
            workflow_of=self.registry.get,
            start_run=self.start_run,
            matches_query=matches_query,
        )

    # -- scheduling -------------------------------------------------------------------------

    def start(self) -> bool:
        """Schedule runs in this process unless another one does; True if this one does."""
        if self._scheduler is not None:
            return True
        path = self.settings.data_dir / "workflows.lock"
        lock_file = path.open("ab")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            return False
        self._lock_file = lock_file
        self._scheduler = Scheduler(
            settings=self.settings,
            engine=self._engine,
            registry=self.registry,
            executor=self._executor,
            workspace=self.workspace,
            archive=self._archive,
            results=self._results,
            actions=self.actions,
            gates=self.gates,
            referenced_series=self._referenced_series,
            run_ended=self._run_ended,
        )
        self._scheduler.start()
        return True

    def close(self) -> None:
        """Stop scheduling; running tasks stay recorded as running and resume on the next start."""
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        self._executor.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _schedule(self, start: bool) -> None:
        if start:
            self.start()
        self._wake()

    def _wake(self) -> None:
        if self._scheduler is not None:
            self._scheduler.wake()

    def poke_gates(self) -> None:
        """What a deferred task waits for may have happened: its gate is asked on the next
        pass (a no-op in a process that does not schedule, whose scheduler asks within its
        own look-again times)."""
        if self._scheduler is not None:
            self._scheduler.poke()

    # -- definitions ------------------------------------------------------------------------

    def workflows(self) -> list[WorkflowView]:
        return [self._view(w) for w in self.registry.all()]

    def workflow(self, name: str) -> WorkflowView:
        return self._view(self.registry.get(name))

    def load_errors(self) -> list[LoadErrorView]:
        return [LoadErrorView(source=e.source, error=e.error) for e in self.registry.errors]

    def reload(self) -> list[LoadErrorView]:
        self.registry.reload()
        return self.load_errors()

    def _view(self, workflow: Workflow) -> WorkflowView:
        return WorkflowView(
            name=workflow.name,
            version=workflow.version,
            description=workflow.description,
            definition_hash=workflow.definition_hash,
            source=self.registry.source(workflow.name),
            max_parallel=workflow.max_parallel,
            parameters_schema=workflow.parameters_schema(),
            service=workflow.service,
            steps=[
                StepView(
                    name=s.name,
                    mode=s.mode.value,
                    operator=s.operator.kind,
                    upstream=list(s.upstream),
                    retries=s.retries,
                    timeout=s.timeout,
                    cpu=s.resources.cpu,
                    memory_mb=s.resources.memory_mb,
                    gpu=s.resources.gpu,
                    gate=s.gate,
                )
                for s in (workflow.steps[name] for name in workflow.order)
            ],
        )

    # -- runs -------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        project_pk: int,
        workflow: str,
        params: dict[str, Any] | None = None,
        dataset: str | None = None,
        series: list[str] | None = None,
        query: dict[str, Any] | None = None,
        created_by: str = "",
        start: bool = True,
        authorize: Callable[[int, str], None] | None = None,
    ) -> RunDetailView:
        """Check everything, then create the run and its tasks; nothing starts on bad input.

        ``start=False`` only records the run, for the process that schedules (``kaapana serve``).
        ``authorize(project_pk, name)`` is called for every other project the run stores into
        (parameters named by the workflow's ``project_params``) and raises if the caller may not.
        """
        definition = self.registry.get(workflow)
        checked = definition.validate_params(params or {})
        self._authorize_projects(definition, checked, project_pk, authorize)
        self._check_nodes(definition, checked)
        checked = self.resolvers.resolve(definition.resolve_params, checked, project_pk)
        with write_transaction(self._engine) as session:
            pks = select_inputs(
                session,
                project_pk=project_pk,
                dataset=dataset,
                series=series,
                query=query,
                select_series=self._select_series,
                needs_series=definition.needs_series,
            )
            run = create_run(
                session,
                workflow=definition,
                project_pk=project_pk,
                params=checked,
                series_pks=pks,
                created_by=created_by,
            )
            run_id = run.id
        self._schedule(start)
        return self.get_run(run_id)

    def _authorize_projects(
        self,
        definition: Workflow,
        params: dict[str, Any],
        project_pk: int,
        authorize: Callable[[int, str], None] | None,
    ) -> None:
        """Each other project the run stores into exists, and the caller may write there."""
        for name in dict.fromkeys(params[p] for p in definition.project_params if params[p]):
            target = self._archive.projects.get(name)
            if authorize is not None and target.id != project_pk:
                authorize(target.id, name)

    def _check_nodes(self, definition: Workflow, params: dict[str, Any]) -> None:
        """Each DICOM node a node parameter names is registered (the tasks get its address)."""
        nodes = Nodes(self._engine)
        for param in definition.node_params:
            if not params.get(param):
                continue
            try:
                nodes.get(params[param])
            except NotFound as exc:
                known = ", ".join(node.name for node in nodes.list()) or "none"
                raise NotFound(
                    f"parameter {param!r} of workflow {definition.name!r}: no DICOM node named "
                    f"{params[param]!r} is registered (registered: {known})"
                ) from exc

    def permission(self, workflow: str) -> PermissionValues:
        """What creating, retrying or rerunning a run of ``workflow`` needs on its project."""
        return self.registry.get(workflow).permission

    def rerun(
        self,
        run_id: int,
        *,
        created_by: str = "",
        scope: ProjectScope = None,
        start: bool = True,
        authorize: Callable[[int, str], None] | None = None,
    ) -> RunDetailView:
        """The same workflow version on the same inputs with the same parameters (``authorize``
        as for ``start_run``)."""
        original = self.get_run(run_id, scope=scope)
        definition = self.registry.get(original.workflow)
        if definition.definition_hash != original.definition_hash:
            raise Conflict(
                f"workflow {original.workflow!r} changed since run {run_id} (definition hash "
                f"{original.definition_hash[:12]} is now {definition.definition_hash[:12]}, "
                f"version {original.version} is now {definition.version}); a rerun needs the "
                "same definition"
            )
        self._authorize_projects(definition, original.params, original.project_pk, authorize)
        self._check_nodes(definition, original.params)
        with write_transaction(self._engine) as session:
            pks = list(
                session.scalars(
                    select(RunInput.series_pk)
                    .where(RunInput.run_pk == run_id)
                    .order_by(RunInput.position)
                )
            )
            if not pks and definition.needs_series:
                raise InvalidInput(f"the inputs of run {run_id} are no longer in the archive")
            run = create_run(
                session,
                workflow=definition,
                project_pk=original.project_pk,
                params=original.params,
                series_pks=pks,
                created_by=created_by,
                rerun_of=run_id,
            )
            new_id = run.id
        self._schedule(start)
        return self.get_run(new_id)

    def cancel(self, run_id: int, *, scope: ProjectScope = None) -> RunDetailView:
        """Running tasks are killed (cancel marker to their worker), pending ones never start."""
        with write_transaction(self._engine) as session:
            run = self._run(session, run_id, scope, lock=True)
            if run.state not in ACTIVE_RUN_STATES:
                raise Conflict(f"run {run_id} is {run.state} already")
            moment = utcnow()
            tasks = select(Task).where(Task.run_pk == run_id).order_by(Task.id).with_for_update()
            for task in session.scalars(tasks):
                if task.state == TaskStateValues.running:
                    self.workspace.cancel(run_id, task.id, task.attempts)
                if task.state not in DONE_TASK_STATES:
                    task.state = TaskStateValues.canceled
                    task.finished_at = moment
            run.state = RunStateValues.canceled
            run.finished_at = moment
            session.flush()
            write_manifest(session, run, self._results)
            workflow = run.workflow
        with self._run_ended:
            self._run_ended.notify_all()
        self._wake()
        try:
            gates = gates_of(self.registry.get(workflow))
        except NotFound:
            gates = frozenset()
        # After the commit: the gate ends what the run drove.
        self.gates.end(gates, run_id, RunStateValues.canceled.value, "canceled")
        return self.get_run(run_id)

    def retry(
        self, run_id: int, *, scope: ProjectScope = None, start: bool = True
    ) -> RunDetailView:
        """Run the failed, canceled and upstream-failed tasks again; finished ones stay."""
        with write_transaction(self._engine) as session:
            run = self._run(session, run_id, scope, lock=True)
            if run.state not in (RunStateValues.failed, RunStateValues.canceled):
                raise Conflict(f"run {run_id} is {run.state}: only failed or canceled runs retry")
            tasks = select(Task).where(Task.run_pk == run_id).order_by(Task.id).with_for_update()
            found = list(session.scalars(tasks))
            # A partial step summarised without the failed series: it summarises again after them.
            partial = self._partial_steps(run.workflow)
            for task in found:
                if task.state in RETRYABLE_TASK_STATES or task.step in partial:
                    task.state = TaskStateValues.pending
                    task.failures = 0
                    task.error = ""
                    task.not_before = None
                    task.finished_at = None
            run.state = RunStateValues.queued
            run.error = ""
            run.finished_at = None
        self._schedule(start)
        return self.get_run(run_id)

    def _partial_steps(self, workflow: str) -> set[str]:
        try:
            steps = self.registry.get(workflow).steps.values()
        except NotFound:
            return set()
        return {step.name for step in steps if step.partial}

    def _run(self, session: Any, run_id: int, scope: ProjectScope, *, lock: bool = False) -> Run:
        run = session.get(Run, run_id, with_for_update=lock)
        if run is None or (
            scope is not None
            and (run.project_pk not in scope or run.workflow in self._service_workflows())
        ):
            raise NotFound(f"run {run_id} not found")
        return run

    def _service_workflows(self) -> frozenset[str]:
        """Names of the service workflows: their runs are the platform's, for administrators
        (``scope`` None) only."""
        return frozenset(w.name for w in self.registry.all() if w.service)

    def list_runs(
        self,
        *,
        scope: ProjectScope = None,
        project_pk: int | None = None,
        limit: int = 100,
        services: bool = False,
    ) -> list[RunView]:
        """Newest first. The service workflows' runs (one per arriving series) are listed only
        when ``services`` asks for them and only to administrators (``scope`` None): they would
        bury the researchers' runs."""
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"'limit' must be 1-1000, got {limit}")
        with self._sessions() as session:
            statement = select(Run, Project.name).join(Project, Project.id == Run.project_pk)
            services_named = self._service_workflows()
            if scope is not None:
                statement = statement.where(Run.project_pk.in_(sorted(scope)))
            if scope is not None or not services:
                statement = statement.where(Run.workflow.not_in(sorted(services_named)))
            if project_pk is not None:
                statement = statement.where(Run.project_pk == project_pk)
            rows = session.execute(statement.order_by(Run.id.desc()).limit(limit)).all()
            counts: dict[int, Counter[str]] = {run.id: Counter() for run, _ in rows}
            if counts:
                for run_pk, state in session.execute(
                    select(Task.run_pk, Task.state).where(Task.run_pk.in_(list(counts)))
                ):
                    counts[run_pk][state] += 1
            return [
                _run_view(run, name, dict(counts[run.id]), run.workflow in services_named)
                for run, name in rows
            ]

    def get_run(self, run_id: int, *, scope: ProjectScope = None) -> RunDetailView:
        with self._sessions() as session:
            run = self._run(session, run_id, scope)
            project = session.get(Project, run.project_pk)
            tasks = session.scalars(
                select(Task).where(Task.run_pk == run_id).order_by(Task.id)
            ).all()
            uids = list(
                session.scalars(
                    select(Series.series_instance_uid)
                    .join(RunInput, RunInput.series_pk == Series.id)
                    .where(RunInput.run_pk == run_id)
                    .order_by(RunInput.position)
                )
            )
            dag: dict[str, list[str]] = {}
            try:
                definition = self.registry.get(run.workflow)
                dag = {name: list(definition.steps[name].upstream) for name in definition.order}
            except NotFound:
                pass
            views = [self._task_view(run_id, t) for t in tasks]
            counts = Counter(t.state for t in tasks)
            summary = _run_view(
                run,
                project.name if project else "",
                dict(counts),
                run.workflow in self._service_workflows(),
            )
            return RunDetailView(
                **summary.model_dump(), series_instance_uids=uids, dag=dag, tasks=views
            )

    def _task_view(self, run_id: int, task: Task) -> TaskView:
        progress = None
        if task.state == TaskStateValues.running:
            progress = read_progress(self.workspace.attempt_dir(run_id, task.id, task.attempts))
        elif task.state == TaskStateValues.succeeded:
            progress = 1.0
        return TaskView(
            id=task.id,
            step=task.step,
            series_instance_uid=task.series_instance_uid or None,
            state=task.state,
            attempts=task.attempts,
            progress=progress,
            worker=task.worker or None,
            error=task.error,
            started_at=task.started_at,
            finished_at=task.finished_at,
        )

    def wait(self, run_id: int, *, timeout: float = 3600.0, poll: float = 0.2) -> RunDetailView:
        """Block until the run has ended (or ``timeout`` passed; then its state as it is).

        The scheduler of this process says when a run ended; ``poll`` is how often the state is
        read anyway, for a run that another process schedules or cancels."""
        deadline = time.monotonic() + timeout
        with self._run_ended:
            while True:
                with self._sessions() as session:
                    state = session.scalar(select(Run.state).where(Run.id == run_id))
                if state is None:
                    raise NotFound(f"run {run_id} not found")
                left = deadline - time.monotonic()
                if state in _DONE_RUN_STATES or left <= 0:
                    break
                self._run_ended.wait(min(poll, left))
        return self.get_run(run_id)

    # -- logs, artifacts, provenance --------------------------------------------------------

    def log_path(
        self, run_id: int, task_id: int, *, attempt: int | None = None, scope: ProjectScope = None
    ) -> Path:
        """The log of an attempt (default: the latest, or the first one if none started yet)."""
        return self._log_attempt(run_id, task_id, attempt, scope)[0]

    def _log_attempt(
        self, run_id: int, task_id: int, attempt: int | None, scope: ProjectScope
    ) -> tuple[Path, int]:
        with self._sessions() as session:
            self._run(session, run_id, scope)
            task = session.get(Task, task_id)
            if task is None or task.run_pk != run_id:
                raise NotFound(f"task {task_id} of run {run_id} not found")
            latest = max(task.attempts, 1)
            chosen = attempt if attempt is not None else latest
            if not 1 <= chosen <= latest:
                raise InvalidInput(f"'attempt' must be 1-{latest}, got {chosen}")
            return self.workspace.log_path(run_id, task_id, chosen), chosen

    def follow_log(
        self,
        run_id: int,
        task_id: int,
        *,
        attempt: int | None = None,
        scope: ProjectScope = None,
        poll: float = 0.25,
    ) -> Iterator[bytes]:
        """The log as it grows, until the task's attempt has ended (checked before it starts)."""
        path, chosen = self._log_attempt(run_id, task_id, attempt, scope)
        return self._follow(path, task_id, chosen, poll)

    def _follow(self, path: Path, task_id: int, attempt: int, poll: float) -> Iterator[bytes]:
        offset = 0
        while True:
            finished = self._task_done(task_id, attempt)
            if path.exists():
                with path.open("rb") as log_file:
                    log_file.seek(offset)
                    chunk = log_file.read()
                if chunk:
                    offset += len(chunk)
                    yield chunk
            if finished:
                return
            time.sleep(poll)

    def _task_done(self, task_id: int, attempt: int) -> bool:
        """The attempt has ended: the task is done, or a later attempt started."""
        with self._sessions() as session:
            task = session.get(Task, task_id)
            if task is None:
                return True
            return task.attempts > attempt or task.state in DONE_TASK_STATES

    def artifacts(self, run_id: int, *, scope: ProjectScope = None) -> list[ArtifactView]:
        with self._sessions() as session:
            self._run(session, run_id, scope)
            rows = session.scalars(
                select(Artifact).where(Artifact.run_pk == run_id).order_by(Artifact.name)
            ).all()
            return [
                ArtifactView(
                    name=a.name,
                    size=a.size,
                    sha256=a.sha256,
                    task_id=a.task_pk,
                    created_at=a.created_at,
                )
                for a in rows
            ]

    def open_artifact(
        self, run_id: int, name: str, *, scope: ProjectScope = None
    ) -> tuple[ArtifactView, BinaryIO]:
        with self._sessions() as session:
            self._run(session, run_id, scope)
            row = session.scalar(
                select(Artifact).where(Artifact.run_pk == run_id, Artifact.name == name)
            )
            if row is None:
                raise NotFound(f"artifact {name!r} of run {run_id} not found")
            view = ArtifactView(
                name=row.name,
                size=row.size,
                sha256=row.sha256,
                task_id=row.task_pk,
                created_at=row.created_at,
            )
            return view, self._results.open(row.storage_key)

    def manifest(self, run_id: int, *, scope: ProjectScope = None) -> dict[str, Any]:
        try:
            _view, stream = self.open_artifact(run_id, MANIFEST_NAME, scope=scope)
        except NotFound as exc:
            raise NotFound(f"run {run_id} has no manifest yet (it is still running)") from exc
        with stream:
            manifest: dict[str, Any] = json.loads(stream.read())
        return manifest

    def diff(self, a: int, b: int, *, scope: ProjectScope = None) -> list[dict[str, Any]]:
        """What differs between two runs' manifests (definition, parameters, inputs, outputs)."""
        return diff_manifests(self.manifest(a, scope=scope), self.manifest(b, scope=scope))


def _run_view(run: Run, project: str, counts: dict[str, int], service: bool) -> RunView:
    return RunView(
        id=run.id,
        project=project,
        project_pk=run.project_pk,
        workflow=run.workflow,
        version=run.version,
        definition_hash=run.definition_hash,
        state=run.state,
        params=run.params,
        created_by=run.created_by,
        rerun_of=run.rerun_of,
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        task_counts=counts,
        service=service,
    )


__all__ = ["Engine"]
