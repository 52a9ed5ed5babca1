"""The participant's end: jobs received from the orchestrator, decided by the site's policy or
its data owner, run on the workflow engine, and their declared outputs collected.

A job is refused when the workflow is not allowed, when the installed workflow or the one the
orchestrator asks for differs from the approved definition hash, when the dataset is not
exposed, or when it would take out anything the workflow does not declare. The site can cancel
a job at any time; a running job's workflow run is canceled with it.
"""

import builtins
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from kaapana.auth.audit import Audit
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import SiteJob, utcnow
from kaapana.errors import Conflict, KaapanaError, NotFound
from kaapana.federation.aggregation import Files
from kaapana.federation.outputs import check_outputs
from kaapana.federation.policies import Policies, PolicyView
from kaapana.federation.states import FINAL_JOB_STATES, ApprovalValues, JobStateValues
from kaapana.workflows import Engine as WorkflowEngine
from kaapana.workflows import RunStateValues
from kaapana.workflows.states import ACTIVE_RUN_STATES

log = logging.getLogger(__name__)
INPUT_PARAMETER = "federated_input"
"""A local workflow with a parameter of this name gets the folder of the job's input artifact."""


@dataclass(frozen=True, slots=True)
class SiteJobView:
    """What a data owner sees before deciding: who asks, what runs, on what, what would leave."""

    job_id: str
    orchestrator: str
    requester: str
    workflow: str
    definition_hash: str
    dataset: str
    params: dict[str, Any]
    outputs: list[str]
    has_input: bool
    round: int
    state: str
    reason: str
    run_id: int | None
    decided_by: str
    uploaded_bytes: int
    received_at: datetime
    finished_at: datetime | None


def _view(job: SiteJob) -> SiteJobView:
    return SiteJobView(
        job_id=job.id,
        orchestrator=job.orchestrator,
        requester=job.requester,
        workflow=job.workflow,
        definition_hash=job.definition_hash,
        dataset=job.dataset,
        params=job.params,
        outputs=list(job.outputs),
        has_input=job.has_input,
        round=job.round,
        state=job.state,
        reason=job.reason,
        run_id=job.run_pk,
        decided_by=job.decided_by,
        uploaded_bytes=job.uploaded_bytes,
        received_at=job.received_at,
        finished_at=job.finished_at,
    )


class SiteJobs:
    def __init__(
        self,
        *,
        engine: Engine,
        policies: Policies,
        workflows: WorkflowEngine,
        audit: Audit,
        inputs_dir: Path,
    ) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._policies = policies
        self._workflows = workflows
        self._audit = audit
        self._inputs_dir = inputs_dir

    # -- the policy -----------------------------------------------------------------------

    def refusal(
        self, *, workflow: str, definition_hash: str, dataset: str, outputs: list[str]
    ) -> str | None:
        """Why the site's policy refuses this job, or None if it may run."""
        policy = self._policies.find(workflow)
        if policy is None:
            return f"workflow {workflow!r} is not allowed at this site"
        try:
            installed = self._workflows.registry.get(workflow)
        except NotFound:
            return f"workflow {workflow!r} is not installed at this site"
        if installed.definition_hash != policy.definition_hash:
            return (
                f"workflow {workflow!r} changed here: its definition hash "
                f"{installed.definition_hash[:12]} is not the approved "
                f"{policy.definition_hash[:12]}; it needs new approval"
            )
        if definition_hash != policy.definition_hash:
            return (
                f"the orchestrator asks for workflow {workflow!r} with definition hash "
                f"{definition_hash[:12]}; this site approved {policy.definition_hash[:12]}"
            )
        undeclared = [name for name in outputs if name not in installed.federated_outputs]
        if undeclared:
            return f"the job would take out {undeclared}, which the workflow does not declare"
        try:
            self._policies.resolve(dataset)
        except NotFound:
            return f"dataset {dataset!r} is not exposed at this site"
        return None

    # -- receiving and deciding -----------------------------------------------------------

    def receive(self, offer: dict[str, Any], *, orchestrator: str) -> SiteJobView | None:
        """Record a job offered by the orchestrator and decide it (None: known already)."""
        job_id = str(offer["job_id"])
        with self._sessions() as session:
            if session.get(SiteJob, job_id) is not None:
                return None
        outputs = [str(name) for name in offer.get("outputs", [])]
        refusal = self.refusal(
            workflow=str(offer["workflow"]),
            definition_hash=str(offer["definition_hash"]),
            dataset=str(offer["dataset"]),
            outputs=outputs,
        )
        policy = self._policies.find(str(offer["workflow"]))
        if refusal is not None:
            state, decided_by = JobStateValues.refused, "policy"
        elif policy is not None and policy.approval is ApprovalValues.automatic:
            state, decided_by = JobStateValues.approved, "policy"
        else:
            state, decided_by = JobStateValues.pending_approval, ""
        with write_transaction(self._engine) as session:
            job = SiteJob(
                id=job_id,
                orchestrator=orchestrator,
                federated_run=int(offer.get("federated_run", 0)),
                round=int(offer.get("round", 1)),
                workflow=str(offer["workflow"]),
                definition_hash=str(offer["definition_hash"]),
                dataset=str(offer["dataset"]),
                params=dict(offer.get("params") or {}),
                requester=str(offer.get("requester", ""))[:255],
                outputs=outputs,
                has_input=bool(offer.get("has_input")),
                state=state,
                reason=refusal or "",
                decided_by=decided_by,
                finished_at=utcnow() if state in FINAL_JOB_STATES else None,
            )
            session.add(job)
        target = f"federated-job:{job_id}"
        detail = {"workflow": job.workflow, "dataset": job.dataset, "requester": job.requester}
        self._audit.record(
            "federation.job.receive", actor=f"site:{orchestrator}", target=target, detail=detail
        )
        if state is JobStateValues.refused:
            self._audit.record(
                "federation.job.refuse",
                actor="policy",
                target=target,
                outcome="failure",
                detail={"reason": refusal},
            )
        elif state is JobStateValues.approved:
            self._audit.record(
                "federation.job.approve",
                actor="policy",
                target=target,
                detail={"approval": "automatic"},
            )
        return _view(job)

    def _decide(self, job_id: str, *, actor: str, state: JobStateValues, reason: str) -> SiteJob:
        with write_transaction(self._engine) as session:
            job = session.get(SiteJob, job_id, with_for_update=True)
            if job is None:
                raise NotFound(f"federated job {job_id!r} not found")
            if job.state != JobStateValues.pending_approval:
                raise Conflict(f"federated job {job_id} is {job.state}, not pending approval")
            job.state = state
            job.decided_by = actor
            job.reason = reason
            if state in FINAL_JOB_STATES:
                job.finished_at = utcnow()
            return job

    def approve(self, job_id: str, *, actor: str) -> SiteJobView:
        job = self._decide(job_id, actor=actor, state=JobStateValues.approved, reason="")
        self._audit.record(
            "federation.job.approve",
            actor=actor,
            target=f"federated-job:{job_id}",
            detail={"approval": "manual"},
        )
        return _view(job)

    def deny(self, job_id: str, *, actor: str, reason: str = "") -> SiteJobView:
        job = self._decide(
            job_id,
            actor=actor,
            state=JobStateValues.denied,
            reason=reason or "denied by the site's data owner",
        )
        self._audit.record(
            "federation.job.deny",
            actor=actor,
            target=f"federated-job:{job_id}",
            detail={"reason": job.reason},
        )
        return _view(job)

    def cancel(self, job_id: str, *, actor: str, reason: str = "") -> SiteJobView:
        """End the job now, whatever it is doing; its running workflow run is canceled."""
        with write_transaction(self._engine) as session:
            job = session.get(SiteJob, job_id, with_for_update=True)
            if job is None:
                raise NotFound(f"federated job {job_id!r} not found")
            if job.state in FINAL_JOB_STATES:
                raise Conflict(f"federated job {job_id} is {job.state} already")
            job.state = JobStateValues.canceled
            job.reason = reason or f"canceled by {actor}"
            job.finished_at = utcnow()
            run_pk = job.run_pk
        if run_pk is not None:
            with contextlib.suppress(Conflict):  # the run had ended already
                self._workflows.cancel(run_pk)
        self._audit.record(
            "federation.job.cancel",
            actor=actor,
            target=f"federated-job:{job_id}",
            detail={"reason": reason},
        )
        return self.get(job_id)

    # -- reading --------------------------------------------------------------------------

    def list(self, *, state: str | None = None, limit: int = 100) -> list[SiteJobView]:
        statement = select(SiteJob).order_by(SiteJob.received_at.desc()).limit(limit)
        if state is not None:
            statement = statement.where(SiteJob.state == state)
        with self._sessions() as session:
            return [_view(j) for j in session.scalars(statement)]

    def get(self, job_id: str) -> SiteJobView:
        with self._sessions() as session:
            job = session.get(SiteJob, job_id)
            if job is None:
                raise NotFound(f"federated job {job_id!r} not found")
            return _view(job)

    def counts(self) -> dict[str, dict[str, int]]:
        """The jobs received from each orchestrator, by state."""
        statement = select(SiteJob.orchestrator, SiteJob.state, func.count()).group_by(
            SiteJob.orchestrator, SiteJob.state
        )
        counts: dict[str, dict[str, int]] = {}
        with self._sessions() as session:
            for orchestrator, state, count in session.execute(statement):
                counts.setdefault(orchestrator, {})[state] = count
        return counts

    def active(self) -> builtins.list[SiteJobView]:
        with self._sessions() as session:
            rows = session.scalars(select(SiteJob).where(SiteJob.state.not_in(FINAL_JOB_STATES)))
            return [_view(j) for j in rows]

    def unreported(self) -> builtins.list[SiteJobView]:
        """Jobs whose state the orchestrator has not heard yet."""
        with self._sessions() as session:
            rows = session.scalars(select(SiteJob).where(SiteJob.state != SiteJob.reported))
            return [_view(j) for j in rows]

    def mark_reported(self, job_id: str, state: str) -> None:
        with write_transaction(self._engine) as session:
            job = session.get(SiteJob, job_id)
            if job is not None:
                job.reported = state

    # -- executing ------------------------------------------------------------------------

    def start(self, job_id: str, input_files: Files) -> SiteJobView:
        """Run an approved job on the exposed dataset (the policy is checked once more)."""
        job = self.get(job_id)
        refusal = self.refusal(
            workflow=job.workflow,
            definition_hash=job.definition_hash,
            dataset=job.dataset,
            outputs=job.outputs,
        )
        if refusal is not None:
            return self._end(job_id, JobStateValues.refused, refusal)
        project, dataset = self._policies.resolve(job.dataset)
        params = dict(job.params)
        definition = self._workflows.registry.get(job.workflow)
        if INPUT_PARAMETER in definition.parameters.model_fields:
            folder = self._inputs_dir / job_id
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in input_files.items():
                (folder / Path(name).name).write_bytes(data)
            params[INPUT_PARAMETER] = str(folder)
        try:
            run = self._workflows.start_run(
                project_pk=project.id,
                workflow=job.workflow,
                params=params,
                dataset=dataset,
                created_by=f"federation:{job.orchestrator}",
            )
        except KaapanaError as exc:
            return self._end(job_id, JobStateValues.failed, exc.detail)
        with write_transaction(self._engine) as session:
            row = session.get(SiteJob, job_id, with_for_update=True)
            assert row is not None
            if row.state != JobStateValues.approved:  # canceled meanwhile
                self._workflows.cancel(run.id)
                return _view(row)
            row.state = JobStateValues.running
            row.run_pk = run.id
        self._audit.record(
            "federation.job.execute",
            actor=f"federation:{job.orchestrator}",
            target=f"federated-job:{job_id}",
            project=project.name,
            detail={"run": run.id, "dataset": dataset},
        )
        return self.get(job_id)

    def check_run(self, job_id: str) -> SiteJobView:
        """A running job whose run ended moves on: outputs to upload, or failed."""
        job = self.get(job_id)
        if job.run_id is None or job.state != JobStateValues.running:
            return job
        run = self._workflows.get_run(job.run_id)
        if run.state in ACTIVE_RUN_STATES:
            return job
        if run.state == RunStateValues.succeeded:
            with write_transaction(self._engine) as session:
                row = session.get(SiteJob, job_id, with_for_update=True)
                if row is not None and row.state == JobStateValues.running:
                    row.state = JobStateValues.uploading
            return self.get(job_id)
        return self._end(job_id, JobStateValues.failed, f"run {run.id} {run.state}: {run.error}")

    def policy_of(self, job: SiteJobView) -> PolicyView:
        policy = self._policies.find(job.workflow)
        if policy is None:
            raise NotFound(f"workflow {job.workflow!r} is no longer allowed at this site")
        return policy

    def collect(self, job_id: str) -> Files:
        """The declared outputs of the job's finished run, checked against the output policy."""
        job = self.get(job_id)
        assert job.run_id is not None
        policy = self.policy_of(job)
        files: Files = {}
        for artifact in self._workflows.artifacts(job.run_id):
            name = artifact.name.rsplit("/", 1)[-1]
            if name in job.outputs:
                if name in files:
                    raise Conflict(f"run {job.run_id} has two artifacts named {name!r}")
                _artifact, stream = self._workflows.open_artifact(job.run_id, artifact.name)
                with stream:
                    files[name] = stream.read()
        missing = [name for name in job.outputs if name not in files]
        if missing:
            raise NotFound(f"run {job.run_id} made none of the declared outputs {missing}")
        check_outputs(
            files,
            declared=job.outputs,
            max_bytes=policy.max_output_bytes,
            allow_pixel_data=policy.allow_pixel_data,
            weights=self._workflows.registry.get(job.workflow).federated_weights,
        )
        return files

    def uploaded(self, job_id: str, size: int) -> None:
        with write_transaction(self._engine) as session:
            row = session.get(SiteJob, job_id, with_for_update=True)
            if row is not None:
                row.state = JobStateValues.succeeded
                row.reported = JobStateValues.succeeded
                row.uploaded_bytes = size
                row.finished_at = utcnow()
        self._audit.record(
            "federation.upload.send",
            actor="federation",
            target=f"federated-job:{job_id}",
            detail={"bytes": size},
        )

    def fail(self, job_id: str, reason: str) -> SiteJobView:
        return self._end(job_id, JobStateValues.failed, reason)

    def _end(self, job_id: str, state: JobStateValues, reason: str) -> SiteJobView:
        with write_transaction(self._engine) as session:
            row = session.get(SiteJob, job_id, with_for_update=True)
            if row is not None and row.state not in FINAL_JOB_STATES:
                row.state = state
                row.reason = reason[:4096]
                row.finished_at = utcnow()
        self._audit.record(
            f"federation.job.{state.value}",
            actor="federation",
            target=f"federated-job:{job_id}",
            outcome="failure",
            detail={"reason": reason[:512]},
        )
        return self.get(job_id)

    def logs(self, job_id: str) -> str:
        """The task logs of the job's run, if the site's policy shares them."""
        job = self.get(job_id)
        policy = self._policies.find(job.workflow)
        if policy is None or not policy.share_logs:
            return "this site does not share the logs of this workflow\n"
        if job.run_id is None:
            return "the job has not run here\n"
        parts = []
        for task in self._workflows.get_run(job.run_id).tasks:
            path = self._workflows.log_path(job.run_id, task.id)
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"== task {task.id} {task.step} ({task.state})\n{text}")
        self._audit.record(
            "federation.logs.send", actor="federation", target=f"federated-job:{job_id}"
        )
        return "".join(parts)


__all__ = ["INPUT_PARAMETER", "SiteJobView", "SiteJobs"]
