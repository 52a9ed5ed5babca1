"""Federated runs at the orchestrator, and the coordinator thread that drives their rounds.

Each pass looks at every running federated run: a round without jobs gets one job per site
(with the current global artifact as input); a round whose jobs have all ended (delivered,
refused, failed or timed out after ``site_timeout``) is aggregated if at least ``min_sites``
sites delivered, else the run fails. The new global artifact is written to result storage
before ``finished_rounds`` is committed with its key, so a crash at any point resumes at the
first unfinished round, with the outputs already received for it.
"""

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from kaapana.auth.audit import Audit
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import FederatedJob, FederatedRun, utcnow
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.federation.aggregation import Plans, pack_files, unpack_files
from kaapana.federation.hub import Hub
from kaapana.federation.sites import Sites
from kaapana.federation.states import (
    FINAL_JOB_STATES,
    FederatedRunStateValues,
    JobStateValues,
    ModelPushValues,
)
from kaapana.storage import ObjectStore
from kaapana.workflows.registry import Registry

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


def global_key(run_pk: int, round: int) -> str:
    return f"federation/runs/{run_pk}/global-{round}.json"


class FederatedRuns:
    def __init__(
        self,
        *,
        engine: Engine,
        plans: Plans,
        registry: Registry,
        sites: Sites,
        hub: Hub,
        results: ObjectStore,
        audit: Audit,
    ) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self.plans = plans
        self._registry = registry
        self._sites = sites
        self._hub = hub
        self._results = results
        self._audit = audit
        self._wake = threading.Event()
        # Site timeouts count from a job's creation, or from when the coordinator (re)started
        # if later: the sites of a round interrupted by a crash get their full time again.
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
        self._audit.record(
            "federation.run.start",
            actor=actor,
            target=f"federated-run:{run_pk}",
            detail={"plan": plan, "sites": targets, "rounds": count, "dataset": dataset},
        )
        self._wake.set()
        return self.get(run_pk)

    def cancel(self, run_pk: int, *, actor: str) -> FederatedRunView:
        with write_transaction(self._engine) as session:
            run = session.get(FederatedRun, run_pk, with_for_update=True)
            if run is None:
                raise NotFound(f"federated run {run_pk} not found")
            if run.state != FederatedRunStateValues.running:
                raise Conflict(f"federated run {run_pk} is {run.state} already")
            run.state = FederatedRunStateValues.canceled
            run.finished_at = utcnow()
            for job in session.scalars(select(FederatedJob).where(FederatedJob.run_pk == run_pk)):
                if job.state not in FINAL_JOB_STATES:
                    job.state = JobStateValues.canceled
                    job.finished_at = utcnow()
        self._audit.record("federation.run.cancel", actor=actor, target=f"federated-run:{run_pk}")
        self._hub.notify()
        return self.get(run_pk)

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

    # -- the coordinator ------------------------------------------------------------------

    def advance(self) -> None:
        """One pass over every running federated run."""
        with self._sessions() as session:
            pks = list(
                session.scalars(
                    select(FederatedRun.id).where(
                        FederatedRun.state == FederatedRunStateValues.running
                    )
                )
            )
        for pk in pks:
            try:
                self._advance(pk)
            except Exception as exc:  # one broken run must not stop the others
                log.exception("federated run %d failed", pk)
                self._fail(pk, f"{type(exc).__name__}: {exc}")

    def _advance(self, run_pk: int) -> None:
        now = utcnow()
        with write_transaction(self._engine) as session:
            run = session.get(FederatedRun, run_pk, with_for_update=True)
            if run is None or run.state != FederatedRunStateValues.running:
                return
            round = run.finished_rounds + 1
            jobs = list(
                session.scalars(
                    select(FederatedJob).where(
                        FederatedJob.run_pk == run_pk, FederatedJob.round == round
                    )
                )
            )
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
                created = True
            else:
                created = False
                deadline = timedelta(seconds=run.site_timeout)
                for job in jobs:
                    started = max(job.created_at, self._resumed_at)
                    if job.state not in FINAL_JOB_STATES and started + deadline < now:
                        job.state = JobStateValues.timed_out
                        job.detail = f"no outputs within {run.site_timeout:g} s"
                        job.finished_at = now
            ended = not created and all(j.state in FINAL_JOB_STATES for j in jobs)
            delivered = {
                j.site: dict(j.outputs) for j in jobs if j.state == JobStateValues.succeeded
            }
            missing = {j.site: j.state for j in jobs if j.state != JobStateValues.succeeded}
            params, plan, current_key = dict(run.params), run.plan, run.global_key
            minimum, last = run.min_sites, round >= run.rounds
        if created:
            self._audit.record(
                "federation.round.dispatch",
                actor="federation",
                target=f"federated-run:{run_pk}",
                detail={"round": round},
            )
            self._hub.notify()
            return
        if not ended:
            return
        if len(delivered) < minimum:
            absent = ", ".join(f"{site}: {state}" for site, state in missing.items())
            self._fail(
                run_pk,
                f"round {round}: {len(delivered)} of {len(delivered) + len(missing)} sites "
                f"delivered, {minimum} needed ({absent})",
            )
            return
        self._aggregate(run_pk, round, plan, params, current_key, delivered, missing, last=last)

    def _broadcast(self, run_pk: int, round: int, plan: str, current_key: str) -> str:
        """The storage key of what the round's sites receive ("" for nothing)."""
        current = unpack_files(self._results.get(current_key)) if current_key else {}
        sent = self.plans.get(plan).aggregator.broadcast(current)
        if not sent:
            return ""
        key = f"federation/runs/{run_pk}/input-{round}.json"
        self._results.put(key, pack_files(sent))
        return key

    def _aggregate(
        self,
        run_pk: int,
        round: int,
        plan: str,
        params: dict[str, Any],
        current_key: str,
        delivered: dict[str, dict[str, Any]],
        missing: dict[str, str],
        *,
        last: bool,
    ) -> None:
        chosen = self.plans.get(plan)
        aggregator = chosen.aggregator
        current = unpack_files(self._results.get(current_key)) if current_key else {}
        outputs = {
            site: {name: self._results.get(meta["key"]) for name, meta in stored.items()}
            for site, stored in delivered.items()
        }
        following = aggregator.aggregate(
            round=round, params=params, current=current, outputs=outputs
        )
        key = global_key(run_pk, round)
        self._results.put(key, pack_files(following))
        finished = chosen.finish(run_pk, params, following) if last and chosen.finish else {}
        with write_transaction(self._engine) as session:
            run = session.get(FederatedRun, run_pk, with_for_update=True)
            if run is None or run.finished_rounds != round - 1:
                return
            run.finished_rounds = round
            run.global_key = key
            run.result = {**aggregator.summary(following), **finished}
            run.history = [
                *(run.history or []),
                {"round": round, "sites": sorted(delivered), "missing": missing},
            ]
            if round >= run.rounds:
                run.state = FederatedRunStateValues.succeeded
                run.finished_at = utcnow()
                if chosen.pushes_model is not None and chosen.pushes_model(params):
                    pushed = session.scalars(
                        select(FederatedJob).where(
                            FederatedJob.run_pk == run_pk,
                            FederatedJob.round == round,
                            FederatedJob.site.in_(sorted(delivered)),
                        )
                    )
                    for job in pushed:
                        job.model_push = ModelPushValues.offered
        self._audit.record(
            "federation.round.aggregate",
            actor="federation",
            target=f"federated-run:{run_pk}",
            detail={"round": round, "sites": sorted(delivered), "missing": missing},
        )
        self._hub.notify()
        self._wake.set()

    def _fail(self, run_pk: int, error: str) -> None:
        with write_transaction(self._engine) as session:
            run = session.get(FederatedRun, run_pk, with_for_update=True)
            if run is None or run.state != FederatedRunStateValues.running:
                return
            run.state = FederatedRunStateValues.failed
            run.error = error[:4096]
            run.finished_at = utcnow()
            for job in session.scalars(select(FederatedJob).where(FederatedJob.run_pk == run_pk)):
                if job.state not in FINAL_JOB_STATES:
                    job.state = JobStateValues.canceled
                    job.finished_at = utcnow()
        self._audit.record(
            "federation.run.fail",
            actor="federation",
            target=f"federated-run:{run_pk}",
            outcome="failure",
            detail={"error": error[:512]},
        )
        self._hub.notify()

    def wake(self) -> None:
        self._wake.set()

    def resume(self) -> None:
        """Called when the coordinator starts: running rounds get their full timeout again."""
        self._resumed_at = utcnow()

    def wait_for_work(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()


class Coordinator:
    """The thread in the orchestrator's server that drives federated runs."""

    def __init__(self, runs: FederatedRuns, *, interval: float = 0.25) -> None:
        self._runs = runs
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="federation-coordinator", daemon=True
        )

    def start(self) -> None:
        self._runs.resume()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._runs.advance()
            self._runs.wait_for_work(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._runs.wake()
        if self._thread.is_alive():
            self._thread.join(10)


__all__ = ["Coordinator", "FederatedJobView", "FederatedRunView", "FederatedRuns", "global_key"]
