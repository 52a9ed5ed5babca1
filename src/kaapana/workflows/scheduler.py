"""The scheduler: the one owner of run and task states, kept in the database.

A single thread per installation (``Engine.start`` takes a lock file in the data dir) advances
the active runs: pending tasks whose upstream tasks succeeded are queued, queued tasks go to the
executor within the global and per-workflow limits, finished attempts are recorded (retried with
backoff, or failed), finished runs get their manifest. Every decision is re-derived from the
database on each pass, so after a restart the same code resumes: a task recorded as running that
this process does not watch was interrupted and is submitted again as a new attempt; a task
recorded as finished is never run again.

Tasks of gated steps (``kaapana.workflows.gates``) are not submitted when queued: their gate is
asked first, after the run's transaction (a gate opens its own), and the task waits
``deferred``, costing no worker, until the gate lets it run.
"""

import logging
import queue
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from distributed import Future
from sqlalchemy import Engine, Select, select, update
from sqlalchemy.orm import Session

from kaapana.archive import Archive
from kaapana.config import Settings
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import (
    Artifact,
    Dataset,
    DatasetSeries,
    DicomNode,
    Instance,
    Project,
    Run,
    RunInput,
    RunOutput,
    Series,
    SeriesProject,
    SeriesTag,
    Study,
    Task,
)
from kaapana.db.models import utcnow as now
from kaapana.errors import InvalidInput, KaapanaError
from kaapana.storage import ObjectStore
from kaapana.workflows.actions import Actions
from kaapana.workflows.context import NodeAddress, SeriesInput, TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow
from kaapana.workflows.execution import EndValues, TaskOutcome, read_outcome
from kaapana.workflows.executor import DaskExecutor
from kaapana.workflows.gates import GATE_INPUT, Done, GateAnswer, GateRequest, Gates, Ready, Wait
from kaapana.workflows.manifest import MANIFEST_NAME, build_manifest, encode
from kaapana.workflows.registry import Registry
from kaapana.workflows.resolvers import split_params
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
_PASS_INTERVAL = 0.2
_GATHER_SECONDS = 0.01

ReferencedSeries = Callable[[dict[str, Any]], set[str]]
"""The Series Instance UIDs one instance's DICOM JSON references (wired by the catalog)."""


@dataclass(frozen=True, slots=True)
class _Attempt:
    workflow: str
    ctx: TaskContext
    step: Step
    project_pk: int
    other_projects: frozenset[str] = frozenset()
    """Projects besides its own the run may store into (the workflow's ``project_params``)."""


@dataclass(frozen=True, slots=True)
class _Watched:
    future: Future
    attempt: _Attempt


@dataclass(frozen=True, slots=True)
class _Finished:
    task_id: int
    attempt: int
    future: Future
    outcome: TaskOutcome


@dataclass(slots=True)
class _TaskRow:
    id: int
    step: str
    series_instance_uid: str
    state: str
    attempts: int
    not_before: datetime | None
    executions: int


@dataclass(frozen=True, slots=True)
class _Consult:
    """A task of a gated step whose gate is to be asked, after the run's transaction."""

    gate: str
    request: GateRequest
    attempts: int
    """The task's attempts when it was chosen: a different count later means it moved on."""


@dataclass(frozen=True, slots=True)
class _RunInputs:
    project: str
    series: list[SeriesInput]
    by_uid: dict[str, SeriesInput]
    files: dict[str, list[tuple[str, str]]]
    referenced: dict[str, set[str]] = field(default_factory=dict)
    """What each input series references, parsed once per run for steps with companions."""


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
        actions: Actions,
        gates: Gates,
        referenced_series: ReferencedSeries | None = None,
        run_ended: threading.Condition | None = None,
    ) -> None:
        self._settings = settings
        # What service tasks get: the installation's settings, valid in their attempt folders,
        # without the secrets none of them needs (a task's context is written there).
        self._service_settings = settings.anchored().model_copy(
            update={"admin_password": None, "oidc_client_secret": None}
        )
        self._run_ended = run_ended or threading.Condition()
        self._gates = gates
        self._poked = threading.Event()
        self._ended: list[tuple[int, str, str, frozenset[str]]] = []
        self._referenced_series = referenced_series
        self._engine = engine
        self._sessions = session_factory(engine)
        self._registry = registry
        self._executor = executor
        self._workspace = workspace
        self._archive = archive
        self._results = results
        self._actions = actions
        self._watched: dict[int, _Watched] = {}
        self._inputs: dict[int, _RunInputs] = {}
        self._events: queue.Queue[_Finished | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kaapana-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._events.put(None)

    def poke(self) -> None:
        """Ask every deferred task's gate on the next pass, whenever each said to look again:
        what one of them waits for may have happened."""
        self._poked.set()
        self.wake()

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
        last_pass = 0.0
        due = True
        while not self._stop.is_set():
            # A pass reads every task of the active runs: at most one per _PASS_INTERVAL while
            # the executor has plenty queued, at once when half its slots are free.
            waited = time.monotonic() - last_pass
            running_dry = len(self._watched) < self._settings.max_parallel_tasks // 2
            if due and (waited >= _PASS_INTERVAL or running_dry):
                last_pass = time.monotonic()
                due = False
                try:
                    self.tick()
                except Exception:
                    log.exception("scheduler pass failed; trying again")
            timeout = max(0.0, _PASS_INTERVAL - waited) if due else _IDLE_POLL
            try:
                item = self._events.get(timeout=timeout)
            except queue.Empty:
                due = True
                continue
            due = True
            finished = [item]
            gather_until = time.monotonic() + _GATHER_SECONDS
            while True:  # what finishes within a few ms, recorded in one transaction
                try:
                    finished.append(
                        self._events.get(timeout=max(0.0, gather_until - time.monotonic()))
                    )
                except queue.Empty:
                    break
            events = [event for event in finished if event is not None]
            if events and not self._stop.is_set():
                try:
                    self._finish_attempts(events)
                except Exception:
                    log.exception("recording tasks %s failed", [e.task_id for e in events])

    def tick(self) -> None:
        """One pass over every active run."""
        poked = self._poked.is_set()
        self._poked.clear()
        with self._sessions() as session:
            active = session.scalars(
                select(Run.id).where(Run.state.in_(list(ACTIVE_RUN_STATES))).order_by(Run.id)
            ).all()
        if not active:
            return
        self._executor.client()  # a local cluster starts here, not inside a write transaction
        ended = False
        for run_id in active:
            consult: list[_Consult] = []
            with write_transaction(self._engine) as session:
                # The row lock orders this pass with cancel and retry (PostgreSQL; SQLite's
                # write transactions are serial anyway).
                run = session.get(Run, run_id, with_for_update=True)
                if run is not None and run.state in ACTIVE_RUN_STATES:
                    consult = self._advance(session, run, poked=poked)
                    ended |= run.state not in ACTIVE_RUN_STATES
            self._report_ended()
            for item in consult:
                self._consult(item)
        if ended:  # committed: whoever waits for a run sees its end now
            with self._run_ended:
                self._run_ended.notify_all()

    def _consult(self, item: _Consult) -> None:
        """Ask the gate, free of any transaction, then act on its answer if the task still
        waits for it (it may have been canceled meanwhile)."""
        answer: GateAnswer | Exception
        try:
            answer = self._gates.get(item.gate).consult(item.request)
        except KaapanaError as exc:
            answer = exc
        except Exception as exc:  # the gate's failure is the task's, as an executor's is
            log.exception("gate %s failed for task %d", item.gate, item.request.task_id)
            answer = exc
        with write_transaction(self._engine) as session:
            run = session.get(Run, item.request.run_id, with_for_update=True)
            task = session.get(Task, item.request.task_id, with_for_update=True)
            if run is None or task is None or run.state not in ACTIVE_RUN_STATES:
                return
            waiting = (TaskStateValues.queued, TaskStateValues.deferred)
            if task.state not in waiting or task.attempts != item.attempts:
                return
            if isinstance(answer, Wait):
                task.state = TaskStateValues.deferred
                task.not_before = answer.until
            elif isinstance(answer, Done):
                task.state = TaskStateValues.succeeded
                task.finished_at = now()
                self.wake()
            elif isinstance(answer, Ready):
                workflow = self._registry.get(run.workflow)
                if self._free_slots(workflow) < 1:
                    task.state = TaskStateValues.queued  # asked again when a slot is free
                    task.not_before = None
                    return
                try:
                    self._submit(
                        [self._prepare(session, run, workflow, task, gate_files=answer.files)]
                    )
                except KaapanaError as exc:
                    self._gate_refused(task, exc)
            else:
                self._gate_refused(task, answer)

    def _gate_refused(self, task: Task, error: Exception) -> None:
        """The gate decided against the task: failed without retries, asking again would
        decide the same."""
        task.state = TaskStateValues.failed
        task.error = (error.detail if isinstance(error, KaapanaError) else repr(error))[:4000]
        task.finished_at = now()
        self.wake()

    def _report_ended(self) -> None:
        """Tell the gates of runs that ended in the last transaction (after its commit)."""
        ended, self._ended = self._ended, []
        for run_id, state, error, gates in ended:
            self._gates.end(gates, run_id, state, error)

    def _advance(self, session: Session, run: Run, *, poked: bool = False) -> list[_Consult]:
        """Advance the run's tasks; returns those whose gates are to be asked."""
        try:
            workflow = self._registry.get(run.workflow)
        except KaapanaError as exc:
            self._fail_run(session, run, exc.detail)
            return []
        if workflow.definition_hash != run.definition_hash:
            self._fail_run(
                session,
                run,
                f"workflow {run.workflow!r} changed since the run was created (definition hash "
                f"{run.definition_hash[:12]} -> {workflow.definition_hash[:12]})",
                workflow,
            )
            return []
        # Plain rows, not ORM objects: a pass over a run of thousands of tasks stays cheap.
        tasks = [
            _TaskRow(*row)
            for row in session.execute(
                select(
                    Task.id,
                    Task.step,
                    Task.series_instance_uid,
                    Task.state,
                    Task.attempts,
                    Task.not_before,
                    Task.executions,
                ).where(Task.run_pk == run.id)
            )
        ]
        by_step: dict[str, list[_TaskRow]] = defaultdict(list)
        by_key: dict[tuple[str, str], _TaskRow] = {}
        for task in tasks:
            by_step[task.step].append(task)
            by_key[task.step, task.series_instance_uid] = task
        changed: dict[str, list[int]] = defaultdict(list)
        for name in workflow.order:
            step = workflow.steps[name]
            for task in by_step[name]:
                if task.state == TaskStateValues.running and task.id not in self._watched:
                    log.info("run %d: task %d was interrupted; submitting again", run.id, task.id)
                    self._workspace.cancel(run.id, task.id, task.attempts)
                    task.state = TaskStateValues.queued
                    changed[task.state].append(task.id)
                if task.state != TaskStateValues.pending:
                    continue
                upstream = _upstream_states(workflow, step, task, by_step, by_key)
                if step.partial:
                    if all(state in DONE_TASK_STATES for state in upstream):
                        good = any(state in GOOD_TASK_STATES for state in upstream)
                        task.state = (
                            TaskStateValues.queued if good else TaskStateValues.upstream_failed
                        )
                        changed[task.state].append(task.id)
                elif any(state in BAD_TASK_STATES for state in upstream):
                    task.state = TaskStateValues.upstream_failed
                    changed[task.state].append(task.id)
                elif all(state in GOOD_TASK_STATES for state in upstream):
                    task.state = TaskStateValues.queued
                    changed[task.state].append(task.id)
        moment = now()
        for state, ids in changed.items():
            finished = {"finished_at": moment} if state in DONE_TASK_STATES else {}
            session.execute(update(Task).where(Task.id.in_(ids)).values(state=state, **finished))
        due = [
            task
            for task in sorted(tasks, key=lambda t: t.id)
            if task.state in (TaskStateValues.queued, TaskStateValues.deferred)
            and (
                task.not_before is None
                or task.not_before <= moment
                or (poked and task.state == TaskStateValues.deferred)
            )
        ]
        consult = [
            _Consult(
                gate,
                GateRequest(run.id, task.id, run.project_pk, dict(run.params), task.executions),
                task.attempts,
            )
            for task in due
            if (gate := workflow.steps[task.step].gate) is not None
        ]
        ready = [
            task
            for task in due
            if task.state == TaskStateValues.queued and workflow.steps[task.step].gate is None
        ][: self._free_slots(workflow)]
        if ready:
            loaded = session.scalars(select(Task).where(Task.id.in_([t.id for t in ready])))
            by_id = {task.id: task for task in loaded}
            attempts = []
            for task in ready:
                attempts.append(self._prepare(session, run, workflow, by_id[task.id]))
                task.state = TaskStateValues.running
            self._submit(attempts)
        if all(task.state in DONE_TASK_STATES for task in tasks):
            good = all(task.state in GOOD_TASK_STATES for task in tasks)
            state = RunStateValues.succeeded if good else RunStateValues.failed
            self._end_run(session, run, state, workflow)
        return consult

    def _free_slots(self, workflow: Workflow) -> int:
        """How many more tasks of this workflow may go to the executor now."""
        free = self._settings.max_parallel_tasks - len(self._watched)
        if workflow.max_parallel is not None:
            mine = Counter(w.attempt.workflow for w in self._watched.values())[workflow.name]
            free = min(free, workflow.max_parallel - mine)
        return max(free, 0)

    def _inputs_of(self, session: Session, run: Run) -> _RunInputs:
        """The run's project name, input series and their files (cached while it is active)."""
        if run.id not in self._inputs:
            project = session.get(Project, run.project_pk)
            chosen = select(RunInput.series_pk).where(RunInput.run_pk == run.id)
            by_pk, files = self._series_of(session, run.project_pk, chosen)
            series = [by_pk[pk] for pk in session.scalars(chosen.order_by(RunInput.position))]
            self._inputs[run.id] = _RunInputs(
                project=project.name if project else "",
                series=series,
                by_uid={s.series_instance_uid: s for s in series},
                files=files,
            )
        return self._inputs[run.id]

    def _labels_of(
        self, session: Session, project_pk: int, chosen: Select[tuple[int]]
    ) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
        """The project's tags and dataset names of the series ``chosen`` (a select of series
        pks), by Series Instance UID."""
        tags: dict[str, tuple[str, ...]] = defaultdict(tuple)
        for uid, tag in session.execute(
            select(Series.series_instance_uid, SeriesTag.tag)
            .join(SeriesTag, SeriesTag.series_pk == Series.id)
            .where(SeriesTag.project_pk == project_pk, Series.id.in_(chosen))
            .order_by(SeriesTag.tag)
        ):
            tags[uid] += (tag,)
        datasets: dict[str, tuple[str, ...]] = defaultdict(tuple)
        for uid, name in session.execute(
            select(Series.series_instance_uid, Dataset.name)
            .join(DatasetSeries, DatasetSeries.series_pk == Series.id)
            .join(Dataset, Dataset.id == DatasetSeries.dataset_pk)
            .where(Dataset.project_pk == project_pk, Series.id.in_(chosen))
            .order_by(Dataset.name)
        ):
            datasets[uid] += (name,)
        return tags, datasets

    def _companions_of(
        self, inputs: _RunInputs, series: Sequence[SeriesInput]
    ) -> list[SeriesInput]:
        """The run's other input series that reference a series that ``series`` reference."""
        if self._referenced_series is None:
            return []
        if not inputs.referenced:
            for item in inputs.series:
                uid = item.series_instance_uid
                inputs.referenced[uid] = self._referenced_series(item.metadata or {})
        own = {item.series_instance_uid for item in series}
        wanted = set().union(*(inputs.referenced[uid] for uid in own))
        return [
            item
            for item in inputs.series
            if item.series_instance_uid not in own
            and inputs.referenced[item.series_instance_uid] & wanted
        ]

    def _references_of(
        self, session: Session, project_pk: int, series: Sequence[SeriesInput]
    ) -> tuple[list[SeriesInput], dict[str, list[tuple[str, str]]]]:
        """The series that ``series`` reference and the project holds (other than ``series``),
        with their files. Read from the series-level DICOM JSON the task has anyway (a SEG's
        ReferencedSeriesSequence is there from ingest on): no query for a series that references
        nothing, and no wait for the catalog's reference rows, which come later."""
        if self._referenced_series is None:
            return [], {}
        uids = {item.series_instance_uid for item in series}
        wanted: set[str] = set()
        for item in series:
            wanted |= self._referenced_series(item.metadata or {})
        wanted -= uids
        if not wanted:
            return [], {}
        chosen = select(Series.id).where(
            Series.series_instance_uid.in_(sorted(wanted)),
            Series.id.in_(
                select(SeriesProject.series_pk).where(SeriesProject.project_pk == project_pk)
            ),
        )
        by_pk, files = self._series_of(session, project_pk, chosen)
        return sorted(by_pk.values(), key=lambda s: s.series_instance_uid), files

    def _series_of(
        self, session: Session, project_pk: int, chosen: Select[tuple[int]]
    ) -> tuple[dict[int, SeriesInput], dict[str, list[tuple[str, str]]]]:
        """The series ``chosen`` (a select of series pks) as task inputs, by pk, with the
        project's tags and datasets, and their files (SOP Instance UID, storage key) by UID."""
        rows = session.execute(
            select(
                Series.id,
                Series.series_instance_uid,
                Study.study_instance_uid,
                Series.modality,
                Series.number_of_instances,
                Series.metadata_json,
            )
            .join(Study, Series.study_pk == Study.id)
            .where(Series.id.in_(chosen))
        ).all()
        files: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for uid, sop_instance_uid, storage_key in session.execute(
            select(Series.series_instance_uid, Instance.sop_instance_uid, Instance.storage_key)
            .join(Instance, Instance.series_pk == Series.id)
            .where(Series.id.in_(chosen))
        ):
            files[uid].append((sop_instance_uid, storage_key))
        tags, datasets = self._labels_of(session, project_pk, chosen)
        return {
            pk: replace(SeriesInput(*row), tags=tags[row[0]], datasets=datasets[row[0]])
            for pk, *row in rows
        }, files

    def _prepare(
        self,
        session: Session,
        run: Run,
        workflow: Workflow,
        task: Task,
        *,
        gate_files: Mapping[str, bytes] | None = None,
    ) -> _Attempt:
        """Marks ``task`` running in a new attempt and prepares its folders and context."""
        step = workflow.steps[task.step]
        inputs = self._inputs_of(session, run)
        series = inputs.series
        if step.mode is ModeValues.per_series:
            series = [inputs.by_uid[task.series_instance_uid]]
        elif step.partial:
            failed = _failed_upstream_series(session, run, workflow, step)
            series = [item for item in series if item.series_instance_uid not in failed]
        companions = self._companions_of(inputs, series) if step.companions else []
        for item in (*series, *companions):
            uid = item.series_instance_uid
            self._workspace.link_inputs(run.id, uid, inputs.files[uid], self._archive.store)
        references: list[SeriesInput] = []
        if step.references:
            references, files = self._references_of(session, run.project_pk, series)
            for item in references:
                uid = item.series_instance_uid
                self._workspace.link_inputs(run.id, uid, files[uid], self._archive.store)
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
            series_instance_uids=[
                s.series_instance_uid for s in (*series, *references, *companions)
            ],
            upstream=step.upstream,
        )
        if gate_files is not None:
            _write_gate_files(attempt_dir / GATE_INPUT, gate_files)
        params, resolved = split_params(run.params)
        ctx = TaskContext(
            run_id=run.id,
            task_id=task.id,
            attempt=task.attempts,
            workflow=run.workflow,
            step=step.name,
            project=inputs.project,
            params=params,
            series=tuple(series),
            workflow_dir=attempt_dir,
            input_step=step.input_dir,
            per_series=step.mode is ModeValues.per_series,
            log_path=self._workspace.log_path(run.id, task.id, task.attempts),
            shared_dirs=(self._workspace.root, self._settings.resolved_storage_dir),
            secrets_dir=self._settings.data_dir.resolve() / "secrets",
            checkpoint_dir=self._workspace.checkpoint_dir(run.id, task.id),
            resolved=resolved,
            nodes=_node_addresses(session, workflow, params),
            calling_ae_title=self._settings.ae_title,
            references=tuple(references),
            companions=tuple(companions),
            settings=self._service_settings if workflow.service else None,
        )
        other_projects = frozenset(
            str(run.params[p]) for p in workflow.project_params if run.params.get(p)
        )
        return _Attempt(run.workflow, ctx, step, run.project_pk, other_projects)

    def _submit(self, attempts: list[_Attempt]) -> None:
        """Hands a pass's attempts of one run to the executor in one batch: Dask's cost of a
        submission is mostly per call, not per task."""

        def on_done(attempt: _Attempt) -> Callable[[Future], None]:
            ctx = attempt.ctx
            # Dask calls this in a thread of its own: reading the outcome there keeps the
            # scheduler thread free of it.
            return lambda f: self._events.put(
                _Finished(ctx.task_id, ctx.attempt, f, _outcome_of(f, ctx))
            )

        futures = self._executor.submit_all(
            [(attempt.ctx, attempt.step, on_done(attempt)) for attempt in attempts]
        )
        for attempt, future in zip(attempts, futures, strict=True):
            self._watched[attempt.ctx.task_id] = _Watched(future, attempt)

    def _finish_attempts(self, events: list[_Finished]) -> None:
        finished: list[tuple[int, int, _Attempt, TaskOutcome]] = []
        for event in events:
            watched = self._watched.get(event.task_id)
            if watched is None or watched.attempt.ctx.attempt != event.attempt:
                continue
            del self._watched[event.task_id]
            finished.append((event.task_id, event.attempt, watched.attempt, event.outcome))
            event.future.release()
        if not finished:
            return
        current = self._running_attempts([task_id for task_id, *_ in finished])
        kept: list[tuple[int, int, _Attempt, TaskOutcome, Collected]] = []
        for task_id, number, attempt, outcome in finished:
            if current.get(task_id) != number:
                continue  # canceled meanwhile, or resubmitted by a newer scheduler
            collected = Collected()
            if outcome.end is EndValues.succeeded:
                try:
                    collected = collect(
                        ctx=attempt.ctx,
                        step=attempt.step,
                        workspace=self._workspace,
                        archive=self._archive,
                        results=self._results,
                        project_pk=attempt.project_pk,
                        actions=self._actions,
                        other_projects=attempt.other_projects,
                    )
                    for line in collected.actions:
                        _append_log(attempt.ctx, f"kaapana: {line}\n")
                except Exception as exc:
                    detail = exc.detail if isinstance(exc, KaapanaError) else repr(exc)
                    _append_log(attempt.ctx, f"kaapana: keeping the results failed: {detail}\n")
                    _append_log(attempt.ctx, traceback.format_exc())
                    outcome = replace(outcome, end=EndValues.failed, error=detail)
            kept.append((task_id, number, attempt, outcome, collected))
        if not kept:
            return
        with write_transaction(self._engine) as session:
            # One query for the batch; rows locked in id order, as cancel and retry lock them:
            # no deadlock between them.
            rows = session.scalars(
                select(Task)
                .where(Task.id.in_([k[0] for k in kept]))
                .order_by(Task.id)
                .with_for_update()
            )
            tasks = {task.id: task for task in rows}
            for task_id, number, attempt, outcome, collected in sorted(kept, key=lambda k: k[0]):
                task = tasks.get(task_id)
                if task is None or task.state != TaskStateValues.running:
                    continue
                if task.attempts == number:
                    self._record_outcome(session, task, attempt.step, outcome, collected)

    def _record_outcome(
        self, session: Session, task: Task, step: Step, outcome: TaskOutcome, collected: Collected
    ) -> None:
        task.worker = outcome.host
        task.finished_at = now()
        if outcome.end is EndValues.succeeded:
            task.state = TaskStateValues.succeeded
            self._record(session, task, collected)
            if step.gate is not None:  # its gate decides whether it runs again
                task.state = TaskStateValues.deferred
                task.executions += 1
                task.failures = 0
                task.not_before = None
                task.finished_at = None
                self.wake()
        elif outcome.end is EndValues.canceled:
            task.state = TaskStateValues.canceled
            task.error = outcome.error
        else:
            task.failures += 1
            task.error = outcome.error[:4000]
            if task.failures <= step.retries:
                delay = self._settings.retry_backoff_seconds * 2 ** (task.failures - 1)
                task.state = TaskStateValues.queued
                task.not_before = now() + timedelta(seconds=delay)
                task.finished_at = None
                threading.Timer(delay, self.wake).start()
            else:
                task.state = TaskStateValues.failed

    def _running_attempts(self, task_ids: list[int]) -> dict[int, int]:
        """The attempt each of these tasks runs now, per the database (absent: not running)."""
        with self._sessions() as session:
            rows = session.execute(
                select(Task.id, Task.attempts).where(
                    Task.id.in_(task_ids), Task.state == TaskStateValues.running
                )
            )
            return {task_id: attempts for task_id, attempts in rows}

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

    def _fail_run(
        self, session: Session, run: Run, error: str, workflow: Workflow | None = None
    ) -> None:
        log.error("run %d failed: %s", run.id, error)
        run.error = error[:4000]
        for task in session.scalars(select(Task).where(Task.run_pk == run.id)):
            if task.state not in DONE_TASK_STATES:
                task.state = TaskStateValues.canceled
                task.finished_at = now()
        self._end_run(session, run, RunStateValues.failed, workflow)

    def _end_run(
        self, session: Session, run: Run, state: RunStateValues, workflow: Workflow | None
    ) -> None:
        run.state = state
        gates = gates_of(workflow) if workflow is not None else frozenset()
        if gates:
            self._ended.append((run.id, state.value, run.error, gates))
        run.finished_at = now()
        self._inputs.pop(run.id, None)
        self._workspace.discard_attempts(run.id)
        session.flush()
        write_manifest(session, run, self._results)
        log.info("run %d %s", run.id, state.value)


def write_manifest(session: Session, run: Run, results: ObjectStore) -> None:
    manifest = build_manifest(session, run)
    stored = put_artifact(results, run.id, MANIFEST_NAME, encode(manifest))
    _replace_artifact(session, run.id, None, stored)


def gates_of(workflow: Workflow) -> frozenset[str]:
    """The gates the workflow's steps name."""
    return frozenset(step.gate for step in workflow.steps.values() if step.gate)


def _write_gate_files(folder: Path, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or ".." in parts:
            raise InvalidInput(f"a gate hands the task {name!r}: only relative paths")
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


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


def _node_addresses(
    session: Session, workflow: Workflow, params: dict[str, object]
) -> dict[str, NodeAddress]:
    """The nodes the run's node parameters name, as registered now (checked at creation; one
    removed since is missing, and the task says so)."""
    names = sorted({str(params[p]) for p in workflow.node_params if params.get(p)})
    if not names:
        return {}
    rows = session.scalars(select(DicomNode).where(DicomNode.name.in_(names)))
    return {n.name: NodeAddress(n.name, n.ae_title, n.host, n.port) for n in rows}


def _upstream_states(
    workflow: Workflow,
    step: Step,
    task: _TaskRow,
    by_step: dict[str, list[_TaskRow]],
    by_key: dict[tuple[str, str], _TaskRow],
) -> list[str]:
    """States of the tasks ``task`` waits for: the same series' for per-series pairs, else all."""
    found: list[str] = []
    for name in step.upstream:
        upstream = workflow.steps[name]
        if upstream.mode is ModeValues.per_series and step.mode is ModeValues.per_series:
            same = by_key.get((name, task.series_instance_uid))
            found += [same.state] if same is not None else []
        else:
            found += [t.state for t in by_step[name]]
    return found


def _failed_upstream_series(session: Session, run: Run, workflow: Workflow, step: Step) -> set[str]:
    """The series whose task of a per-series upstream step of ``step`` did not succeed."""
    per_series = [n for n in step.upstream if workflow.steps[n].mode is ModeValues.per_series]
    rows = session.execute(
        select(Task.series_instance_uid, Task.state).where(
            Task.run_pk == run.id, Task.step.in_(per_series)
        )
    )
    return {uid for uid, state in rows if state not in GOOD_TASK_STATES}


def _outcome_of(future: Future, ctx: TaskContext) -> TaskOutcome:
    if future.cancelled():
        return TaskOutcome(EndValues.canceled, None, "", 0.0, 0.0, "canceled")
    if future.status == "finished":
        written = read_outcome(ctx)
        if written is not None:
            return written
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


__all__ = ["Scheduler", "gates_of", "write_manifest"]
