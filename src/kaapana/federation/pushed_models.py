"""The participant's end of a pushed model: the final model of a federated-training run, taken
into the site's own model registry, where predict-segmentation applies it.

The data owner's control is the job: a model is taken only with a federated-training job this
site approved, ran and delivered (the orchestrator cannot push anything else), while the
workflow is still allowed, and only as a segmentation model file (a torch state dict). It is
registered in the project of the dataset the job ran on, as the model name the site approved
in the job's parameters, with its provenance in the metrics; taking it again (a repeated
offer) gives the registered version back.
"""

import hashlib
import json
from typing import Any

from sqlalchemy import Engine

from kaapana.auth.audit import Audit
from kaapana.db.engine import session_factory
from kaapana.db.models import SiteJob
from kaapana.errors import Conflict, InvalidInput, KaapanaError, NotFound
from kaapana.federation.aggregation import Files
from kaapana.federation.envelope import open_sealed
from kaapana.federation.outputs import check_outputs
from kaapana.federation.policies import Policies
from kaapana.federation.states import JobStateValues
from kaapana.federation.training import (
    MODEL_NAME,
    PROVENANCE_NAME,
    WORKFLOW_NAME,
    load_model_file,
)
from kaapana.models.registry import ModelRegistry, ModelView
from kaapana.operators.segmentation_parameters import FederatedTrainingParameters
from kaapana.storage import ObjectStore


def pushed_model_key(orchestrator: str, federated_run: int) -> str:
    return f"federation/models/{orchestrator}/{federated_run}/{MODEL_NAME}"


class PushedModels:
    def __init__(
        self,
        *,
        engine: Engine,
        policies: Policies,
        models: ModelRegistry,
        results: ObjectStore,
        audit: Audit,
    ) -> None:
        self._sessions = session_factory(engine)
        self._policies = policies
        self._models = models
        self._results = results
        self._audit = audit

    def register(self, job_id: str, sealed: bytes, *, orchestrator: str, key: bytes) -> ModelView:
        """Open and register the model offered with ``job_id`` (sealed with the orchestrator's
        ``key``); every refusal is audited and raised."""
        target = f"federated-job:{job_id}"
        try:
            files = open_sealed(key, sealed, job_id=job_id, kind="model", max_age=None).files
            model, provenance = self._register(job_id, files, orchestrator=orchestrator)
        except KaapanaError as exc:
            self._audit.record(
                "federation.model.receive",
                actor=f"site:{orchestrator}",
                target=target,
                outcome="failure",
                detail={"error": exc.code, "reason": exc.detail[:512]},
            )
            raise
        self._audit.record(
            "federation.model.receive",
            actor=f"site:{orchestrator}",
            target=target,
            project=model.project,
            detail={"model": model.name, "version": model.version, **provenance},
        )
        return model

    def _register(
        self, job_id: str, files: Files, *, orchestrator: str
    ) -> tuple[ModelView, dict[str, Any]]:
        with self._sessions() as session:
            job = session.get(SiteJob, job_id)
            if job is None or job.orchestrator != orchestrator:
                raise NotFound(f"no federated job {job_id!r} from {orchestrator!r} at this site")
            workflow, state, run, dataset = job.workflow, job.state, job.federated_run, job.dataset
            params = dict(job.params)
        if workflow != WORKFLOW_NAME:
            raise InvalidInput(
                f"job {job_id} ran {workflow!r}; only {WORKFLOW_NAME} brings a model"
            )
        if state != JobStateValues.succeeded:
            raise Conflict(f"job {job_id} is {state} here: a model comes only with a delivered job")
        policy = self._policies.find(workflow)
        if policy is None:
            raise Conflict(f"workflow {workflow!r} is no longer allowed at this site")
        if set(files) != {MODEL_NAME, PROVENANCE_NAME}:
            raise InvalidInput(
                f"a pushed model is {MODEL_NAME} and {PROVENANCE_NAME}, got {sorted(files)}"
            )
        data = files[MODEL_NAME]
        check_outputs(
            {MODEL_NAME: data},
            declared=[MODEL_NAME],
            max_bytes=policy.max_output_bytes,
            allow_pixel_data=False,
            weights=[MODEL_NAME],
        )
        try:
            provenance = dict(json.loads(files[PROVENANCE_NAME]))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"the model's provenance is not a JSON object: {exc}") from exc
        sha256 = hashlib.sha256(data).hexdigest()
        if provenance.get("sha256") != sha256 or provenance.get("federated_run") != run:
            raise InvalidInput(
                f"the model's provenance does not match: sha256 {sha256[:12]} and federated run "
                f"{run} here, {str(provenance.get('sha256'))[:12]} and "
                f"{provenance.get('federated_run')} in the provenance"
            )
        segments = load_model_file(data, "the pushed model")["config"]["segments"]
        parameters = FederatedTrainingParameters.model_validate(params)
        project, _dataset = self._policies.resolve(dataset)
        kept = {
            "federated_run": run,
            "orchestrator": orchestrator,
            "round": provenance.get("round"),
            "sha256": sha256,
            "job": job_id,
        }
        for model in self._models.list_models(project_pk=project.id):
            same = {k: model.metrics.get(k) for k in ("federated_run", "orchestrator")}
            if model.name == parameters.model_name and same == {
                "federated_run": run,
                "orchestrator": orchestrator,
            }:
                return model, kept
        key = pushed_model_key(orchestrator, run)
        self._results.put(key, data)
        model = self._models.register(
            project_pk=project.id,
            run_id=None,
            name=parameters.model_name,
            storage_key=key,
            labels=segments,
            modality=parameters.modality,
            metrics=kept,
        )
        return model, kept


__all__ = ["PushedModels", "pushed_model_key"]
