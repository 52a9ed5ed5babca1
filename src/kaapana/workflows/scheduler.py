"""The scheduler: the one owner of run and task states, kept in the database.

A single thread per installation (``Engine.start`` takes a lock file in the data dir) advances
the active runs: pending tasks whose upstream tasks succeeded are queued, queued tasks go to the
executor within the global and per-workflow limits, finished attempts are recorded (retried with
backoff, or failed), finished runs get their manifest. Every decision is re-derived from the
database on each pass, so after a restart the same code resumes: a task recorded as running that
this process does not watch was interrupted and is submitted again as a new attempt; a task
recorded as finished is never run again.
"""

import logging
import queue
import threading
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta

from distributed import Future
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kaapana.archive import Archive
from kaapana.config import Settings
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import (
    Artifact,
    Instance,
    Project,
    Run,
    RunInput,
    RunOutput,
    Series,
    Study,
    Task,
)
from kaapana.db.models import utcnow as now
from kaapana.errors import KaapanaError
from kaapana.storage import ObjectStore
from kaapana.workflows.context import SeriesInput, TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow
from kaapana.workflows.execution import EndValues, TaskOutcome
from kaapana.workflows.executor import DaskExecutor
from kaapana.workflows.manifest import MANIFEST_NAME, build_manifest, encode
from kaapana.workflows.registry import Registry
from kaapana.workflows.results import Collected, StoredArtifact, collect, put_artifact
from kaapana.workflows.states import (
    ACTIVE_RUN_STATES,
    BAD_TASK_STATES,
    DONE_TASK_STATES,
    GOOD_TASK_STATES,
    RunStateValues,
    TaskStateValues,
)
from kaapana.workflows.workspace import Workspace

log = logging.getLogger(__name__)
_IDLE_POLL = 0.5


@dataclass(frozen=True, slots=True)
class _Watched:
    future: Future
    attempt: int
    workflow: str
    ctx: TaskContext
    step: Step
    project_pk: int


class Scheduler:
    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        registry: Registry,
        executor: DaskExecutor,
        workspace: Workspace,
        archive: Archive,
        results: ObjectStore,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._sessions = session_factory(engine)
        self._registry = registry
        self._executor = executor
        self._workspace = workspace
        self._archive = archive
        self._results = results
        self._watched: dict[int, _Watched] = {}
        self._inputs: dict[int, tuple[str, list[SeriesInput]]] = {}
        self._events: queue.Queue[tuple[int, int, Future] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kaapana-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._events.put(None)

    def stop(self) -> None:
        """Stop deciding; running attempts stay recorded as running, for the next start."""
        self._stop.set()
        self.wake()
        if self._thread.is_alive():
            self._thread.join()
        for watched in self._watched.values():
            watched.future.release()
        self._watched.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler pass failed; trying again")
            try:
                item = self._events.get(timeout=_IDLE_POLL)
            except queue.Empty:
                continue
            finished = [item]
            while True:  # everything that finished meanwhile, then one pass
                try:
                    finished.append(self._events.get_nowait())
                except queue.Empty:
                    break
            for event in finished:
                if event is not None and not self._stop.is_set():
                    try:
                        self._finish_attempt(*event)
                    except Exception:
                        log.exception("recording task %s failed", event[0])

    def tick(self) -> None:
        """One pass over every active run."""
        with self._sessions() as session:
            active = session.scalars(
                select(Run.id).where(Run.state.in_(list(ACTIVE_RUN_STATES))).order_by(Run.id)
            ).all()
        if not active:
            return
        self._executor.client()  # a local cluster starts here, not inside a write transaction
        for run_id in active:
            with write_transaction(self._engine) as session:
                run = session.get(Run, run_id)
                if run is not None and run.state in ACTIVE_RUN_STATES:
                    self._advance(session, run)

    def _advance(self, session: Session, run: Run) -> None:
        try:
            workflow = self._registry.get(run.workflow)
        except KaapanaError as exc:
            self._fail_run(session, run, exc.detail)
            return
        if workflow.definition_hash != run.definition_hash:
            self._fail_run(
                session,
                run,
                f"workflow {run.workflow!r} changed since the run was created (definition hash "
                f"{run.definition_hash[:12]} -> {workflow.definition_hash[:12]})",
            )
            return
        tasks = session.scalars(select(Task).where(Task.run_pk == run.id)).all()
        by_step: dict[str, list[Task]] = defaultdict(list)
        for task in tasks:
            by_step[task.step].append(task)
        moment = now()
        for name in workflow.order:
            step = workflow.steps[name]
            for task in by_step[name]:
                if task.state == TaskStateValues.running and task.id not in self._watched:
                    log.info("run %d: task %d was interrupted; submitting again", run.id, task.id)
                    self._workspace.cancel(run.id, task.id, task.attempts)
                    task.state = TaskStateValues.queued
                if task.state != TaskStateValues.pending:
                    continue
                upstream = _upstream_tasks(workflow, step, task, by_step)
                if any(u.state in BAD_TASK_STATES for u in upstream):
                    task.state = TaskStateValues.upstream_failed
                    task.finished_at = moment
                elif all(u.state in GOOD_TASK_STATES for u in upstream):
                    task.state = TaskStateValues.queued
        for task in sorted(tasks, key=lambda t: t.id):
            if task.state != TaskStateValues.queued:
                continue
            if task.not_before is not None and task.not_before > moment:
                continue
            if not self._has_capacity(workflow):
                break
            self._submit(session, run, workflow, task)
        if all(task.state in DONE_TASK_STATES for task in tasks):
            good = all(task.state in GOOD_TASK_STATES for task in tasks)
            self._end_run(session, run, RunStateValues.succeeded if good else RunStateValues.failed)

    def _has_capacity(self, workflow: Workflow) -> bool:
        if len(self._watched) >= self._settings.max_parallel_tasks:
            return False
        if workflow.max_parallel is None:
            return True
        mine = Counter(w.workflow for w in self._watched.values())[workflow.name]
        return mine < workflow.max_parallel

    def _inputs_of(self, session: Session, run: Run) -> tuple[str, list[SeriesInput]]:
        """The run's project name and input series (cached while the run is active)."""
        if run.id not in self._inputs:
            project = session.get(Project, run.project_pk)
            rows = session.execute(
                select(
                    Series.series_instance_uid,
                    Study.study_instance_uid,
                    Series.modality,
                    Series.number_of_instances,
                    Series.metadata_json,
                )
                .join(RunInput, RunInput.series_pk == Series.id)
                .join(Study, Series.study_pk == Study.id)
                .where(RunInput.run_pk == run.id)
                .order_by(RunInput.position)
            ).all()
            name = project.name if project else ""
            self._inputs[run.id] = (name, [SeriesInput(*row) for row in rows])
        return self._inputs[run.id]

    def _submit(self, session: Session, run: Run, workflow: Workflow, task: Task) -> None:
        step = workflow.steps[task.step]
        project, series = self._inputs_of(session, run)
        if step.mode is ModeValues.per_series:
            series = [s for s in series if s.series_instance_uid == task.series_instance_uid]
        for item in series:
            instances = session.execute(
                select(Instance.sop_instance_uid, Instance.storage_key)
                .join(Series, Instance.series_pk == Series.id)
                .where(Series.series_instance_uid == item.series_instance_uid)
            ).all()
            self._workspace.link_inputs(
                run.id,
                item.series_instance_uid,
                [(row.sop_instance_uid, row.storage_key) for row in instances],
                self._archive.store,
            )
        task.attempts += 1
        task.state = TaskStateValues.running
        task.started_at = now()
        task.finished_at = None
        task.error = ""
        if run.state == RunStateValues.queued:
            run.state = RunStateValues.running
            run.started_at = task.started_at
        attempt_dir = self._workspace.prepare_attempt(
            run_id=run.id,
            task_id=task.id,
            attempt=task.attempts,
            series_instance_uids=[s.series_instance_uid for s in series],
            upstream=step.upstream,
        )
        ctx = TaskContext(
            run_id=run.id,
            task_id=task.id,
            attempt=task.attempts,
            workflow=run.workflow,
            step=step.name,
            project=project,
            params=dict(run.params),
            series=tuple(series),
            workflow_dir=attempt_dir,
            input_step=step.input_dir,
            per_series=step.mode is ModeValues.per_series,
            log_path=self._workspace.log_path(run.id, task.id, task.attempts),
            shared_dirs=(self._workspace.root, self._settings.resolved_storage_dir),
        )
        attempt = task.attempts
        task_id = task.id
        future = self._executor.submit(
            ctx,
            step.operator,
            step.timeout,
            on_done=lambda f: self._events.put((task_id, attempt, f)),
        )
        self._watched[task.id] = _Watched(future, attempt, run.workflow, ctx, step, run.project_pk)

    def _finish_attempt(self, task_id: int, attempt: int, future: Future) -> None:
        watched = self._watched.get(task_id)
        if watched is None or watched.attempt != attempt:
            return
        del self._watched[task_id]
        outcome = _outcome_of(future, watched.ctx)
        future.release()
        collected = Collected()
        if outcome.end is EndValues.succeeded and self._still_running(task_id, attempt):
            try:
                collected = collect(
                    ctx=watched.ctx,
                    step=watched.step,
                    workspace=self._workspace,
                    archive=self._archive,
                    results=self._results,
                    project_pk=watched.project_pk,
                )
            except Exception as exc:
                detail = exc.detail if isinstance(exc, KaapanaError) else repr(exc)
                _append_log(watched.ctx, f"kaapana: keeping the results failed: {detail}\n")
                _append_log(watched.ctx, traceback.format_exc())
                outcome = replace(outcome, end=EndValues.failed, error=detail)
        with write_transaction(self._engine) as session:
            task = session.get(Task, task_id)
            if task is None or task.state != TaskStateValues.running or task.attempts != attempt:
                return  # canceled meanwhile, or resubmitted by a newer scheduler
            task.worker = outcome.host
            task.finished_at = now()
            if outcome.end is EndValues.succeeded:
                task.state = TaskStateValues.succeeded
                self._record(session, task, collected)
            elif outcome.end is EndValues.canceled:
                task.state = TaskStateValues.canceled
                task.error = outcome.error
            else:
                task.failures += 1
                task.error = outcome.error[:4000]
                if task.failures <= watched.step.retries:
                    delay = self._settings.retry_backoff_seconds * 2 ** (task.failures - 1)
                    task.state = TaskStateValues.queued
                    task.not_before = now() + timedelta(seconds=delay)
                    task.finished_at = None
                    threading.Timer(delay, self.wake).start()
                else:
                    task.state = TaskStateValues.failed

    def _still_running(self, task_id: int, attempt: int) -> bool:
        with self._sessions() as session:
            task = session.get(Task, task_id)
            return (
                task is not None
                and task.state == TaskStateValues.running
                and task.attempts == attempt
            )

    def _record(self, session: Session, task: Task, collected: Collected) -> None:
        for stored in collected.artifacts:
            _replace_artifact(session, task.run_pk, task.id, stored)
        for dicom in collected.dicom:
            existing = session.get(RunOutput, (task.run_pk, dicom.sop_instance_uid))
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(
                RunOutput(
                    run_pk=task.run_pk,
                    task_pk=task.id,
                    sop_instance_uid=dicom.sop_instance_uid,
                    source_series_instance_uid=dicom.source_series_instance_uid,
                    sha256=dicom.sha256,
                )
            )

    def _fail_run(self, session: Session, run: Run, error: str) -> None:
        log.error("run %d failed: %s", run.id, error)
        run.error = error[:4000]
        for task in session.scalars(select(Task).where(Task.run_pk == run.id)):
            if task.state not in DONE_TASK_STATES:
                task.state = TaskStateValues.canceled
                task.finished_at = now()
        self._end_run(session, run, RunStateValues.failed)

    def _end_run(self, session: Session, run: Run, state: RunStateValues) -> None:
        run.state = state
        run.finished_at = now()
        self._inputs.pop(run.id, None)
        session.flush()
        write_manifest(session, run, self._results)
        log.info("run %d %s", run.id, state.value)


def write_manifest(session: Session, run: Run, results: ObjectStore) -> None:
    manifest = build_manifest(session, run)
    stored = put_artifact(results, run.id, MANIFEST_NAME, encode(manifest))
    _replace_artifact(session, run.id, None, stored)


def _replace_artifact(
    session: Session, run_pk: int, task_pk: int | None, stored: StoredArtifact
) -> None:
    existing = session.scalar(
        select(Artifact).where(Artifact.run_pk == run_pk, Artifact.name == stored.name)
    )
    if existing is None:
        existing = Artifact(run_pk=run_pk, name=stored.name)
        session.add(existing)
    existing.task_pk = task_pk
    existing.storage_key = stored.storage_key
    existing.size = stored.size
    existing.sha256 = stored.sha256
    existing.created_at = now()


def _upstream_tasks(
    workflow: Workflow, step: Step, task: Task, by_step: dict[str, list[Task]]
) -> list[Task]:
    found: list[Task] = []
    for name in step.upstream:
        upstream = workflow.steps[name]
        if upstream.mode is ModeValues.per_series and step.mode is ModeValues.per_series:
            found += [t for t in by_step[name] if t.series_instance_uid == task.series_instance_uid]
        else:
            found += by_step[name]
    return found


def _outcome_of(future: Future, ctx: TaskContext) -> TaskOutcome:
    if future.cancelled():
        return TaskOutcome(EndValues.canceled, None, "", 0.0, 0.0, "canceled")
    try:
        outcome: TaskOutcome = future.result()
        return outcome
    except Exception as exc:  # the executor's failure (lost workers, pickling): the task's too
        text = f"{type(exc).__name__}: {exc}"
        _append_log(ctx, f"kaapana: the executor failed the task: {text}\n")
        return TaskOutcome(EndValues.failed, None, "", 0.0, 0.0, text)


def _append_log(ctx: TaskContext, text: str) -> None:
    ctx.log_path.parent.mkdir(parents=True, exist_ok=True)
    with ctx.log_path.open("a") as log_file:
        log_file.write(text)


__all__ = ["Scheduler", "write_manifest"]
