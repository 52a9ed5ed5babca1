"""The orchestrator's end of the protocol: what participants fetch and what they send.

Participants only ever call in (poll, status, input, outputs, logs); nothing here connects
out. A poll waits up to the asked number of seconds and answers as soon as a job for the site
is waiting (long polling), so a job is delivered within a round trip of its creation.
"""

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.exc import IntegrityError

from kaapana.auth.audit import Audit
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import FederatedJob, FederatedRun, FederationNonce, utcnow
from kaapana.errors import Conflict, InvalidInput, KaapanaError, NotFound
from kaapana.federation.aggregation import unpack_files
from kaapana.federation.envelope import open_sealed, seal
from kaapana.federation.outputs import check_outputs
from kaapana.federation.sites import Sites
from kaapana.federation.states import (
    FINAL_JOB_STATES,
    MODEL_PUSH_ANSWERS,
    REPORTABLE_JOB_STATES,
    JobStateValues,
    ModelPushValues,
)
from kaapana.federation.training import MODEL_NAME, PROVENANCE_NAME, final_model_key
from kaapana.storage import ObjectStore
from kaapana.workflows.registry import Registry

log = logging.getLogger(__name__)
REDELIVER_SECONDS = 30.0
"""A fetched job the site has not acknowledged with a status is offered again after this."""
MAX_WAIT_SECONDS = 60.0
LOG_LIMIT = 1024 * 1024


class ReplayedPayload(Conflict):
    code = "replayed_payload"


@dataclass(frozen=True, slots=True)
class PollAnswer:
    jobs: list[dict[str, Any]]
    cancel: list[str]
    logs: list[str]
    models: list[str]
    """Jobs with which the site is offered the run's final model."""


def output_key(run_pk: int, round: int, site: str, name: str) -> str:
    return f"federation/runs/{run_pk}/round-{round}/{site}/{name}"


class Hub:
    def __init__(
        self,
        *,
        site_name: str,
        engine: Engine,
        sites: Sites,
        results: ObjectStore,
        registry: Registry,
        audit: Audit,
        max_output_bytes: int,
        max_upload_age: float,
        on_job_change: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_job_change`` is called when a site delivers or reports a job's state: whoever
        waits for a round's end looks again."""
        self._on_job_change = on_job_change
        self._site_name = site_name
        self._engine = engine
        self._sessions = session_factory(engine)
        self._sites = sites
        self._results = results
        self._registry = registry
        self._audit = audit
        self._max_output_bytes = max_output_bytes
        self._max_upload_age = max_upload_age
        self._changed = threading.Condition()

    def notify(self) -> None:
        """Wake the waiting polls: a job was created, canceled or its logs requested."""
        with self._changed:
            self._changed.notify_all()

    # -- poll -----------------------------------------------------------------------------

    def poll(self, site: str, *, active: list[str], wait: float) -> PollAnswer:
        """The site's new jobs, which of its ``active`` jobs to cancel, which jobs to send
        logs of and which bring it a final model; waits up to ``wait`` seconds for any."""
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise InvalidInput(f"'wait' must be 0-{MAX_WAIT_SECONDS:g} seconds, got {wait}")
        deadline = time.monotonic() + wait
        while True:
            answer = self._take(site, active)
            remaining = deadline - time.monotonic()
            if answer.jobs or answer.cancel or answer.logs or answer.models or remaining <= 0:
                return answer
            with self._changed:
                # Woken by jobs made in this process; the timeout covers other processes.
                self._changed.wait(min(remaining, 0.5))

    def _take(self, site: str, active: list[str]) -> PollAnswer:
        now = utcnow()
        stale = now - timedelta(seconds=REDELIVER_SECONDS)
        with self._sessions() as session:
            waiting = session.scalar(
                select(FederatedJob.id)
                .where(
                    FederatedJob.site == site,
                    or_(
                        FederatedJob.state == JobStateValues.queued,
                        (FederatedJob.state == JobStateValues.delivered)
                        & (FederatedJob.delivered_at < stale),
                    ),
                )
                .limit(1)
            )
            cancel = (
                list(
                    session.scalars(
                        select(FederatedJob.id).where(
                            FederatedJob.site == site,
                            FederatedJob.id.in_(active),
                            FederatedJob.state.in_(FINAL_JOB_STATES),
                        )
                    )
                )
                if active
                else []
            )
            # Logs may be asked of any job of the site, also one that has ended there.
            logs = list(
                session.scalars(
                    select(FederatedJob.id).where(
                        FederatedJob.site == site, FederatedJob.logs_requested.is_(True)
                    )
                )
            )
            models = list(
                session.scalars(
                    select(FederatedJob.id).where(
                        FederatedJob.site == site,
                        FederatedJob.model_push == ModelPushValues.offered,
                    )
                )
            )
        jobs: list[dict[str, Any]] = []
        if waiting is not None:
            jobs = self._deliver(site, now, stale)
        return PollAnswer(jobs=jobs, cancel=cancel, logs=logs, models=models)

    def _deliver(self, site: str, now: Any, stale: Any) -> list[dict[str, Any]]:
        offers = []
        with write_transaction(self._engine) as session:
            rows = session.execute(
                select(FederatedJob, FederatedRun)
                .join(FederatedRun, FederatedRun.id == FederatedJob.run_pk)
                .where(
                    FederatedJob.site == site,
                    or_(
                        FederatedJob.state == JobStateValues.queued,
                        (FederatedJob.state == JobStateValues.delivered)
                        & (FederatedJob.delivered_at < stale),
                    ),
                )
                .order_by(FederatedJob.created_at)
            ).all()
            for job, run in rows:
                job.state = JobStateValues.delivered
                job.delivered_at = now
                offers.append(
                    {
                        "job_id": job.id,
                        "federated_run": run.id,
                        "round": job.round,
                        "workflow": run.workflow,
                        "definition_hash": run.definition_hash,
                        "dataset": run.dataset,
                        "params": run.params,
                        "outputs": self._declared(run.workflow),
                        "requester": run.created_by,
                        "has_input": bool(job.input_key),
                    }
                )
        for offer in offers:
            self._audit.record(
                "federation.job.deliver",
                actor=f"site:{site}",
                target=f"federated-job:{offer['job_id']}",
                detail={"workflow": offer["workflow"], "round": offer["round"]},
            )
        return offers

    def _declared(self, workflow: str) -> list[str]:
        try:
            return list(self._registry.get(workflow).federated_outputs)
        except NotFound:
            return []

    def _weights(self, workflow: str) -> list[str]:
        try:
            return list(self._registry.get(workflow).federated_weights)
        except NotFound:
            return []

    # -- calls about one job --------------------------------------------------------------

    def _job(self, session: Any, site: str, job_id: str, *, lock: bool = False) -> FederatedJob:
        job = session.get(FederatedJob, job_id, with_for_update=lock)
        if job is None or job.site != site:
            raise NotFound(f"federated job {job_id!r} not found for site {site!r}")
        return job

    def report(self, site: str, job_id: str, *, state: str, detail: str = "") -> str:
        """The site's state of a job; a job that ended here keeps its state (returned)."""
        try:
            reported = JobStateValues(state)
        except ValueError as exc:
            raise InvalidInput(f"'state' must be a job state, got {state!r}") from exc
        if reported not in REPORTABLE_JOB_STATES:
            allowed = ", ".join(sorted(REPORTABLE_JOB_STATES))
            raise InvalidInput(f"a site reports one of {allowed}, got {state!r}")
        with write_transaction(self._engine) as session:
            job = self._job(session, site, job_id, lock=True)
            if job.state not in FINAL_JOB_STATES:
                job.state = reported
                job.detail = detail[:4096]
                if reported in FINAL_JOB_STATES:
                    job.finished_at = utcnow()
            current = job.state
        self._on_job_change()
        self._audit.record(
            "federation.job.status",
            actor=f"site:{site}",
            target=f"federated-job:{job_id}",
            detail={"state": reported.value, "detail": detail[:512]},
        )
        return current

    def input(self, site: str, job_id: str) -> bytes:
        """The job's input artifact (the global artifact of its round), sealed for the site."""
        with self._sessions() as session:
            job = self._job(session, site, job_id)
            key = job.input_key
        files = unpack_files(self._results.get(key)) if key else {}
        self._audit.record(
            "federation.input.send",
            actor=f"site:{site}",
            target=f"federated-job:{job_id}",
            detail={"files": sorted(files)},
        )
        return seal(self._sites.participant_key(site), job_id=job_id, kind="input", files=files)

    def model(self, site: str, job_id: str) -> bytes:
        """The final model offered with the job, and its provenance, sealed for the site."""
        with self._sessions() as session:
            job = self._job(session, site, job_id)
            if job.model_push != ModelPushValues.offered:
                raise Conflict(f"federated job {job_id} offers no model")
            run = session.get(FederatedRun, job.run_pk)
            assert run is not None  # the foreign key cascades
            run_pk, round, rounds = run.id, job.round, run.rounds
            registered = dict((run.result or {}).get("model") or {})
        data = self._results.get(final_model_key(run_pk))
        sha256 = hashlib.sha256(data).hexdigest()
        provenance = {
            "federated_run": run_pk,
            "orchestrator": self._site_name,
            "round": round,
            "rounds": rounds,
            "sha256": sha256,
            "model": registered,
        }
        self._audit.record(
            "federation.model.send",
            actor=f"site:{site}",
            target=f"federated-job:{job_id}",
            detail={"federated_run": run_pk, "sha256": sha256, "bytes": len(data)},
        )
        files = {MODEL_NAME: data, PROVENANCE_NAME: json.dumps(provenance).encode()}
        return seal(self._sites.participant_key(site), job_id=job_id, kind="model", files=files)

    def model_report(self, site: str, job_id: str, *, state: str, detail: str = "") -> None:
        """What the site did with the offered model: registered it, or refused it (why)."""
        try:
            answer = ModelPushValues(state)
        except ValueError as exc:
            raise InvalidInput(f"'state' must be registered or refused, got {state!r}") from exc
        if answer not in MODEL_PUSH_ANSWERS:
            raise InvalidInput(f"'state' must be registered or refused, got {state!r}")
        with write_transaction(self._engine) as session:
            job = self._job(session, site, job_id, lock=True)
            if not job.model_push:
                raise Conflict(f"federated job {job_id} offers no model")
            job.model_push = answer
            job.model_push_detail = detail[:1024]
        self._audit.record(
            "federation.model.status",
            actor=f"site:{site}",
            target=f"federated-job:{job_id}",
            outcome="success" if answer is ModelPushValues.registered else "failure",
            detail={"state": answer.value, "detail": detail[:512]},
        )

    def receive_outputs(self, site: str, job_id: str, body: bytes, *, address: str) -> int:
        """Open, check and keep a site's outputs; every refusal is audited and raised."""
        try:
            return self._receive_outputs(site, job_id, body)
        except KaapanaError as exc:
            self._audit.record(
                "federation.upload.receive",
                actor=f"site:{site}",
                target=f"federated-job:{job_id}",
                outcome="failure",
                address=address,
                detail={"error": exc.code, "reason": exc.detail[:512], "bytes": len(body)},
            )
            raise

    def _receive_outputs(self, site: str, job_id: str, body: bytes) -> int:
        envelope = open_sealed(
            self._sites.participant_key(site),
            body,
            job_id=job_id,
            kind="outputs",
            max_age=self._max_upload_age,
        )
        with self._sessions() as session:
            if session.get(FederationNonce, envelope.nonce) is not None:
                raise ReplayedPayload(
                    f"this upload (nonce {envelope.nonce[:8]}…) was received before: a replay"
                )
            job = self._job(session, site, job_id)
            run = session.get(FederatedRun, job.run_pk)
            assert run is not None  # the foreign key cascades
            if job.state in FINAL_JOB_STATES:
                raise Conflict(f"federated job {job_id} is {job.state}; it takes no more outputs")
            declared = self._declared(run.workflow)
            weights = self._weights(run.workflow)
            run_pk, round = run.id, job.round
        check_outputs(
            envelope.files,
            declared=declared,
            max_bytes=self._max_output_bytes,
            allow_pixel_data=False,
            weights=weights,
        )
        stored = {}
        for name, data in envelope.files.items():
            key = output_key(run_pk, round, site, name)
            self._results.put(key, data)
            stored[name] = {"key": key, "size": len(data)}
        try:
            with write_transaction(self._engine) as session:
                session.add(FederationNonce(nonce=envelope.nonce, job_id=job_id))
                session.flush()
                job = self._job(session, site, job_id, lock=True)
                if job.state in FINAL_JOB_STATES:
                    raise Conflict(f"federated job {job_id} is {job.state} already")
                job.outputs = stored
                job.state = JobStateValues.succeeded
                job.received_bytes = len(body)
                job.finished_at = utcnow()
        except IntegrityError as exc:
            raise ReplayedPayload(
                f"this upload (nonce {envelope.nonce[:8]}…) was received before: a replay"
            ) from exc
        self._audit.record(
            "federation.upload.receive",
            actor=f"site:{site}",
            target=f"federated-job:{job_id}",
            detail={"files": sorted(stored), "bytes": len(body), "round": round},
        )
        self._on_job_change()
        self.notify()
        return len(body)

    def receive_logs(self, site: str, job_id: str, body: bytes) -> None:
        envelope = open_sealed(
            self._sites.participant_key(site),
            body,
            job_id=job_id,
            kind="logs",
            max_age=self._max_upload_age,
        )
        text = b"".join(envelope.files.values()).decode(errors="replace")[:LOG_LIMIT]
        with write_transaction(self._engine) as session:
            job = self._job(session, site, job_id, lock=True)
            job.logs = text
            job.logs_requested = False
        self._audit.record(
            "federation.logs.receive",
            actor=f"site:{site}",
            target=f"federated-job:{job_id}",
            detail={"bytes": len(text)},
        )

    def job_counts(self) -> dict[str, dict[str, int]]:
        """The jobs sent to each participant, by state: how busy and how reliable a site is."""
        statement = select(FederatedJob.site, FederatedJob.state, func.count()).group_by(
            FederatedJob.site, FederatedJob.state
        )
        counts: dict[str, dict[str, int]] = {}
        with self._sessions() as session:
            for site, state, count in session.execute(statement):
                counts.setdefault(site, {})[state] = count
        return counts


__all__ = ["Hub", "PollAnswer", "ReplayedPayload", "output_key"]
