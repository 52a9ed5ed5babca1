"""Federated runs at the orchestrator, each driven by an engine run of its plan's central workflow.

A federated run is a row of ``federated_runs`` (plan, sites, rounds, the current global
artifact) and a run of the workflow engine (``run_pk``) whose one task waits at the
``federated-round`` gate, registered here: asked by the scheduler, the gate dispatches a
round's jobs (with the broadcast of the current global artifact), times out late sites, and once
every job of the round has ended either fails the run (fewer than ``min_sites`` delivered,
naming the missing sites) or lets the task aggregate the delivered outputs on a Dask worker.
The task's output, the next global artifact, is committed by the ``federation.commit-round``
action (written to result storage, then ``finished_rounds`` with its key), after which the gate
dispatches the next round or, after the last, lets the engine run succeed. Everything is read
from the tables on each question, so after a crash the engine resubmits the interrupted task,
the gate answers for the first unfinished round, and the run goes on from there with the
outputs already received for it. Canceling either run cancels the other.
"""

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from kaapana.auth.audit import Audit
from kaapana.auth.projects import ADMIN_PROJECT, Projects
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import FederatedJob, FederatedRun, utcnow
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.federation.aggregation import Plans, pack_files, unpack_files
from kaapana.federation.central import (
    GLOBAL_DIR,
    STEP_NAME,
    central_name,
    gate_input,
    read_files,
)
from kaapana.federation.hub import Hub
from kaapana.federation.sites import Sites
from kaapana.federation.states import (
    FINAL_JOB_STATES,
    FederatedRunStateValues,
    JobStateValues,
    ModelPushValues,
)
from kaapana.storage import ObjectStore
from kaapana.workflows import ActionRequest, Done, GateAnswer, GateRequest, Ready, Wait
from kaapana.workflows import Engine as WorkflowEngine
from kaapana.workflows.states import RunStateValues

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FederatedJobView:
    job_id: str
    round: int
    site: str
    state: str
    detail: str
    outputs: list[str]
    received_bytes: int
    model_push: str
    """The final model pushed with this job: "" (none), offered, registered or refused."""
    model_push_detail: str
    created_at: datetime
    finished_at: datetime | None
    logs: str


@dataclass(frozen=True, slots=True)
class FederatedRunView:
    id: int
    plan: str
    workflow: str
    definition_hash: str
    dataset: str
    sites: list[str]
    rounds: int
    finished_rounds: int
    min_sites: int
    site_timeout: float
    state: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    history: list[dict[str, Any]]
    error: str
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    jobs: list[FederatedJobView]
    run_id: int | None
    """The engine run of the central workflow (``kaapana runs show``)."""


def global_key(run_pk: int, round: int) -> str:
    return f"federation/runs/{run_pk}/global-{round}.json"


class FederatedRuns:
    def __init__(
        self,
        *,
        engine: Engine,
        plans: Plans,
        workflows: WorkflowEngine,
        projects: Projects,
        sites: Sites,
        hub: Hub,
        results: ObjectStore,
        audit: Audit,
    ) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self.plans = plans
        self._workflows = workflows
        self._registry = workflows.registry
        self._projects = projects
        self._sites = sites
        self._hub = hub
        self._results = results
        self._audit = audit
        # Site timeouts count from a job's creation, or from when this process resumed the
        # runs if later: the sites of a round interrupted by a crash get their full time again.
        self._resumed_at = utcnow()

    # -- requests -------------------------------------------------------------------------

    def start(
        self,
        plan: str,
        *,
        dataset: str,
        actor: str,
        sites: list[str] | None = None,
        rounds: int | None = None,
        min_sites: int | None = None,
        site_timeout: float = 3600.0,
        params: dict[str, Any] | None = None,
    ) -> FederatedRunView:
        chosen = self.plans.get(plan)
        workflow = self._registry.get(chosen.workflow)
        checked = workflow.validate_params(params or {})
        registered = self._sites.participants()
        targets = list(dict.fromkeys(sites)) if sites else registered
        unknown = [s for s in targets if s not in registered]
        if unknown:
            raise NotFound(f"no participant registered as {', '.join(unknown)}")
        if not targets:
            raise InvalidInput("no participants are registered; add one with `kaapana sites add`")
        count = rounds if rounds is not None else chosen.default_rounds
        if not 1 <= count <= 10_000:
            raise InvalidInput(f"'rounds' must be 1-10000, got {count}")
        minimum = min_sites if min_sites is not None else len(targets)
        if not 1 <= minimum <= len(targets):
            raise InvalidInput(f"'min_sites' must be 1-{len(targets)}, got {minimum}")
        if not 0 < site_timeout <= 30 * 86400:
            raise InvalidInput(f"'site_timeout' must be > 0 and <= 30 days, got {site_timeout}")
        initial = chosen.aggregator.initial(checked)
        with write_transaction(self._engine) as session:
            run = FederatedRun(
                plan=chosen.name,
                workflow=workflow.name,
                definition_hash=workflow.definition_hash,
                params=checked,
                dataset=dataset,
                sites=targets,
                rounds=count,
                min_sites=minimum,
                site_timeout=site_timeout,
                state=FederatedRunStateValues.running,
                created_by=actor,
                history=[],
            )
            session.add(run)
            session.flush()
            run_pk = run.id
            # In the run's own transaction: the coordinator must not dispatch round 1 without it.
            if initial:
                key = global_key(run_pk, 0)
                self._results.put(key, pack_files(initial))
                run.global_key = key
        # Scheduled by the process that schedules (``kaapana serve``); its gate waits for the
        # link written next, so it never drives a run that is not its own.
        central = self._workflows.start_run(
            project_pk=self._projects.get(ADMIN_PROJECT).id,
            workflow=central_name(chosen.name),
            params={"federated_run": run_pk},
            created_by=actor,
            start=False,
        )
        with write_transaction(self._engine) as session:
            linked = session.get(FederatedRun, run_pk, with_for_update=True)
            assert linked is not None  # created above; runs are never deleted
            linked.run_pk = central.id
        self._audit.record(
            "federation.run.start",
            actor=actor,
            target=f"federated-run:{run_pk}",
            detail={
                "plan": plan,
                "sites": targets,
                "rounds": count,
                "dataset": dataset,
                "run": central.id,
            },
        )
        return self.get(run_pk)

    def cancel(self, run_pk: int, *, actor: str) -> FederatedRunView:
        """Cancels the central engine run too."""
        with self._sessions() as session:
            found = session.get(FederatedRun, run_pk)
            if found is None:
                raise NotFound(f"federated run {run_pk} not found")
            central = found.run_pk
        self._end(run_pk, FederatedRunStateValues.canceled, "", actor=actor, strict=True)
        if central is not None:
            with contextlib.suppress(Conflict):  # ended already, from its side
                self._workflows.cancel(central)
        return self.get(run_pk)

    def _end(
        self,
        run_pk: int,
        state: FederatedRunStateValues,
        error: str,
        *,
        actor: str,
        strict: bool = False,
    ) -> None:
        """End a running federated run (canceled or failed) and its open jobs; ``strict``: one
        that is not running is a conflict, else left as it is."""
        with write_transaction(self._engine) as session:
            run = session.get(FederatedRun, run_pk, with_for_update=True)
            if run is None or run.state != FederatedRunStateValues.running:
                if strict:
                    state_now = run.state if run is not None else "gone"
                    raise Conflict(f"federated run {run_pk} is {state_now} already")
                return
            run.state = state
            run.error = error[:4096]
            run.finished_at = utcnow()
            for job in session.scalars(select(FederatedJob).where(FederatedJob.run_pk == run_pk)):
                if job.state not in FINAL_JOB_STATES:
                    job.state = JobStateValues.canceled
                    job.finished_at = utcnow()
        if state == FederatedRunStateValues.canceled:
            self._audit.record(
                "federation.run.cancel", actor=actor, target=f"federated-run:{run_pk}"
            )
        else:
            self._audit.record(
                "federation.run.fail",
                actor=actor,
                target=f"federated-run:{run_pk}",
                outcome="failure",
                detail={"error": error[:512]},
            )
        self._hub.notify()

    def request_logs(self, job_id: str, *, actor: str) -> None:
        """Ask the job's site for its logs; it sends them with its next poll, if its policy
        shares them."""
        with write_transaction(self._engine) as session:
            job = session.get(FederatedJob, job_id)
            if job is None:
                raise NotFound(f"federated job {job_id!r} not found")
            job.logs_requested = True
        self._audit.record("federation.logs.request", actor=actor, target=f"federated-job:{job_id}")
        self._hub.notify()

    # -- reading --------------------------------------------------------------------------

    def list(self, *, limit: int = 100) -> list[FederatedRunView]:
        with self._sessions() as session:
            pks = list(
                session.scalars(
                    select(FederatedRun.id).order_by(FederatedRun.id.desc()).limit(limit)
                )
            )
        return [self.get(pk) for pk in pks]

    def get(self, run_pk: int) -> FederatedRunView:
        with self._sessions() as session:
            run = session.get(FederatedRun, run_pk)
            if run is None:
                raise NotFound(f"federated run {run_pk} not found")
            jobs = session.scalars(
                select(FederatedJob)
                .where(FederatedJob.run_pk == run_pk)
                .order_by(FederatedJob.round, FederatedJob.site)
            ).all()
            return FederatedRunView(
                id=run.id,
                plan=run.plan,
                workflow=run.workflow,
                definition_hash=run.definition_hash,
                dataset=run.dataset,
                sites=list(run.sites),
                rounds=run.rounds,
                finished_rounds=run.finished_rounds,
                min_sites=run.min_sites,
                site_timeout=run.site_timeout,
                state=run.state,
                params=run.params,
                result=run.result,
                history=list(run.history or []),
                error=run.error,
                created_by=run.created_by,
                created_at=run.created_at,
                finished_at=run.finished_at,
                run_id=run.run_pk,
                jobs=[
                    FederatedJobView(
                        job_id=j.id,
                        round=j.round,
                        site=j.site,
                        state=j.state,
                        detail=j.detail,
                        outputs=sorted(j.outputs),
                        received_bytes=j.received_bytes,
                        model_push=j.model_push,
                        model_push_detail=j.model_push_detail,
                        created_at=j.created_at,
                        finished_at=j.finished_at,
                        logs=j.logs,
                    )
                    for j in jobs
                ],
            )

    def global_artifact(self, run_pk: int) -> dict[str, bytes]:
        with self._sessions() as session:
            run = session.get(FederatedRun, run_pk)
            if run is None:
                raise NotFound(f"federated run {run_pk} not found")
            key = run.global_key
        return unpack_files(self._results.get(key)) if key else {}

    # -- the gate of the central workflow ---------------------------------------------------

    def resume(self) -> None:
        """Called when this process starts driving the runs (``kaapana serve``): running rounds
        give their sites their full timeout again; a run whose central run was never linked
        (the orchestrator stopped in between) fails, as nothing would drive it."""
        self._resumed_at = utcnow()
        with self._sessions() as session:
            orphans = list(
                session.scalars(
                    select(FederatedRun.id).where(
                        FederatedRun.state == FederatedRunStateValues.running,
                        FederatedRun.run_pk.is_(None),
                    )
                )
            )
        for pk in orphans:
            self._end(
                pk,
                FederatedRunStateValues.failed,
                "the orchestrator stopped before the run's central workflow run was created",
                actor="federation",
            )

    def consult(self, request: GateRequest) -> GateAnswer:
        """The ``federated-round`` gate: where the first unfinished round of the federated run
        that ``request``'s run drives stands."""
        run_pk = request.params.get("federated_run")
        now = utcnow()
        with write_transaction(self._engine) as session:
            run = session.get(FederatedRun, run_pk, with_for_update=True)
            if run is None:
                raise NotFound(f"federated run {run_pk} not found")
            if run.run_pk is None:
                return Wait()  # linked by ``start`` in a moment
            if run.run_pk != request.run_id:
                raise Conflict(f"federated run {run_pk} is driven by run {run.run_pk}")
            if run.state == FederatedRunStateValues.succeeded:
                return Done()
            if run.state != FederatedRunStateValues.running:
                raise Conflict(f"federated run {run_pk} is {run.state}")
            round = run.finished_rounds + 1
            jobs = list(
                session.scalars(
                    select(FederatedJob).where(
                        FederatedJob.run_pk == run_pk, FederatedJob.round == round
                    )
                )
            )
            timeout = timedelta(seconds=run.site_timeout)
            if not jobs:
                input_key = self._broadcast(run_pk, round, run.plan, run.global_key)
                for site in run.sites:
                    session.add(
                        FederatedJob(
                            id=uuid.uuid4().hex,
                            run_pk=run_pk,
                            round=round,
                            site=site,
                            state=JobStateValues.queued,
                            input_key=input_key,
                            outputs={},
                        )
                    )
                deadline: datetime | None = now + timeout
            else:
                deadline = None
                for job in jobs:
                    ends = max(job.created_at, self._resumed_at) + timeout
                    if job.state in FINAL_JOB_STATES:
                        continue
                    if ends < now:
                        job.state = JobStateValues.timed_out
                        job.detail = f"no outputs within {run.site_timeout:g} s"
                        job.finished_at = now
                    else:
                        deadline = ends if deadline is None else min(deadline, ends)
            delivered = {
                j.site: dict(j.outputs) for j in jobs if j.state == JobStateValues.succeeded
            }
            missing = {j.site: j.state for j in jobs if j.state != JobStateValues.succeeded}
            params, current_key, minimum = dict(run.params), run.global_key, run.min_sites
        if not jobs:
            self._audit.record(
                "federation.round.dispatch",
                actor="federation",
                target=f"federated-run:{run_pk}",
                detail={"round": round},
            )
            self._hub.notify()
            return Wait(deadline)
        if deadline is not None:  # sites still at work; an upload or report pokes the gate
            return Wait(deadline)
        if len(delivered) < minimum:
            absent = ", ".join(f"{site}: {state}" for site, state in missing.items())
            error = (
                f"round {round}: {len(delivered)} of {len(delivered) + len(missing)} sites "
                f"delivered, {minimum} needed ({absent})"
            )
            self._end(run_pk, FederatedRunStateValues.failed, error, actor="federation")
            raise Conflict(error)
        current = unpack_files(self._results.get(current_key)) if current_key else {}
        outputs = {
            site: {name: self._results.get(meta["key"]) for name, meta in stored.items()}
            for site, stored in delivered.items()
        }
        return Ready(
            gate_input(run_pk=run_pk, round=round, params=params, current=current, outputs=outputs)
        )

    def ended(self, run_id: int, state: str, error: str) -> None:
        """The central run ended: a federated run it drove that still runs ends with it."""
        with self._sessions() as session:
            pk = session.scalar(select(FederatedRun.id).where(FederatedRun.run_pk == run_id))
        if pk is None or state == RunStateValues.succeeded:
            return
        if state == RunStateValues.canceled:
            self._end(pk, FederatedRunStateValues.canceled, "", actor="federation")
        else:
            detail = error or f"its central run {run_id} failed"
            self._end(pk, FederatedRunStateValues.failed, detail, actor="federation")

    def commit_round(self, request: ActionRequest) -> str:
        """The ``federation.commit-round`` action of the round's aggregation: its output, the
        next global artifact, into result storage, then the round into the run. Idempotent: a
        round committed already is left as it is."""
        run_pk, round = request.payload.get("federated_run"), request.payload.get("round")
        if not isinstance(run_pk, int) or not isinstance(round, int):
            raise InvalidInput(
                f"'federated_run' and 'round' must be integers, got {dict(request.payload)}"
            )
        with self._sessions() as session:
            run = session.get(FederatedRun, run_pk)
            if run is None or run.run_pk != request.run_id:
                raise InvalidInput(f"run {request.run_id} does not drive federated run {run_pk}")
            if run.finished_rounds >= round:
                return f"round {round} of federated run {run_pk} was committed already"
            if run.finished_rounds != round - 1 or run.state != FederatedRunStateValues.running:
                raise Conflict(
                    f"federated run {run_pk} is {run.state} after {run.finished_rounds} rounds; "
                    f"round {round} cannot be committed"
                )
            plan, params, last = self.plans.get(run.plan), dict(run.params), round >= run.rounds
        folder = self._workflows.workspace.run_dir(request.run_id) / STEP_NAME / GLOBAL_DIR
        following = read_files(folder)
        key = global_key(run_pk, round)
        self._results.put(key, pack_files(following))
        finished = plan.finish(run_pk, params, following) if last and plan.finish else {}
        with write_transaction(self._engine) as session:
            run = session.get(FederatedRun, run_pk, with_for_update=True)
            if run is None or run.finished_rounds != round - 1:
                return f"round {round} of federated run {run_pk} was committed already"
            jobs = session.scalars(
                select(FederatedJob).where(
                    FederatedJob.run_pk == run_pk, FederatedJob.round == round
                )
            ).all()
            delivered = sorted(j.site for j in jobs if j.state == JobStateValues.succeeded)
            missing = {j.site: j.state for j in jobs if j.state != JobStateValues.succeeded}
            run.finished_rounds = round
            run.global_key = key
            run.result = {**plan.aggregator.summary(following), **finished}
            run.history = [
                *(run.history or []),
                {"round": round, "sites": delivered, "missing": missing},
            ]
            if last:
                run.state = FederatedRunStateValues.succeeded
                run.finished_at = utcnow()
                if plan.pushes_model is not None and plan.pushes_model(params):
                    for job in jobs:
                        if job.state == JobStateValues.succeeded:
                            job.model_push = ModelPushValues.offered
        self._audit.record(
            "federation.round.aggregate",
            actor="federation",
            target=f"federated-run:{run_pk}",
            detail={"round": round, "sites": delivered, "missing": missing},
        )
        self._hub.notify()
        return f"round {round} of federated run {run_pk} committed ({', '.join(delivered)})"

    def _broadcast(self, run_pk: int, round: int, plan: str, current_key: str) -> str:
        """The storage key of what the round's sites receive ("" for nothing)."""
        current = unpack_files(self._results.get(current_key)) if current_key else {}
        sent = self.plans.get(plan).aggregator.broadcast(current)
        if not sent:
            return ""
        key = f"federation/runs/{run_pk}/input-{round}.json"
        self._results.put(key, pack_files(sent))
        return key


__all__ = ["FederatedJobView", "FederatedRunView", "FederatedRuns", "global_key"]
