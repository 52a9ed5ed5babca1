"""federated-training: the train-segmentation U-Net trained across sites with FedAvg or FedProx.

Every round each site trains ``epochs`` local epochs from the broadcast global weights (FedProx:
with the proximal term ``proximal_mu``) and uploads only its model file and its number of
training cases; the orchestrator averages the weights, weighted by those numbers (FedAvg), into
the next global model. After the last round the global model is registered in the
orchestrator's model registry, where predict-segmentation applies it like a locally trained one;
with ``push_model`` every site that delivered the last round fetches it and registers it too.

torch is imported inside the methods: the orchestrator lists its plans without the ``ml`` extra.
"""

import io
import json
from collections.abc import Mapping
from typing import Any, Final

from kaapana.auth.projects import ADMIN_PROJECT, Projects
from kaapana.errors import InvalidInput
from kaapana.federation.aggregation import FederatedPlan, Files
from kaapana.models.registry import ModelRegistry
from kaapana.operators.segmentation_parameters import FederatedTrainingParameters
from kaapana.storage import ObjectStore

WORKFLOW_NAME: Final = "federated-training"
MODEL_NAME: Final = "model.pt"
"""The model file: broadcast as the global model, uploaded as a site's weights."""
UPDATE_NAME: Final = "update.json"
"""A site's number of training cases (the FedAvg weight) and its local validation figures."""
HISTORY_NAME: Final = "training.json"
PROVENANCE_NAME: Final = "provenance.json"
"""Sent with a pushed model: the federated run, the orchestrator, the round and the sha256."""


def final_model_key(run_pk: int) -> str:
    """Where the orchestrator keeps a federated run's registered final model."""
    return f"federation/runs/{run_pk}/{MODEL_NAME}"


def pushes_model(params: Mapping[str, Any]) -> bool:
    return FederatedTrainingParameters.model_validate(dict(params)).push_model


def load_model_file(data: bytes, what: str) -> dict[str, Any]:
    import torch

    try:
        content: dict[str, Any] = torch.load(
            io.BytesIO(data), map_location="cpu", weights_only=True
        )
        content["state"] = dict(content["state"])
    except Exception as exc:  # torch raises many kinds for a file it refuses
        raise InvalidInput(f"{what} is not a segmentation model file: {exc}") from exc
    return content


def _save(content: Mapping[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(dict(content), buffer)
    return buffer.getvalue()


def _weighted_mean(values: Mapping[str, float], weights: Mapping[str, int]) -> float:
    total = sum(weights[site] for site in values)
    return round(sum(values[site] * weights[site] for site in values) / total, 6)


class FederatedAveraging:
    """FedAvg over the sites' model files, weighted by their training cases."""

    def initial(self, params: Mapping[str, Any]) -> Files:
        import torch

        from kaapana.operators.unet import MODEL_FORMAT, NetworkConfig, build_network

        parameters = FederatedTrainingParameters.model_validate(dict(params))
        # The segments' codes and the spacing come from the sites' data with round 1.
        config = NetworkConfig(
            segments=[{"label": label} for label in parameters.labels],
            modality=parameters.modality,
            channels=parameters.channels,
            num_res_units=parameters.num_res_units,
            patch_size=parameters.patch_size,
            spacing=[1.0, 1.0, 1.0],
        )
        torch.manual_seed(parameters.seed)
        state = build_network(config).state_dict()
        model = {"format": MODEL_FORMAT, "config": config.model_dump(mode="json"), "state": state}
        return {MODEL_NAME: _save(model), HISTORY_NAME: json.dumps({"rounds": []}).encode()}

    def aggregate(
        self,
        *,
        round: int,
        params: Mapping[str, Any],
        current: Files,
        outputs: Mapping[str, Files],
    ) -> Files:
        import torch

        reference = load_model_file(current[MODEL_NAME], "the global model")
        shapes = {name: tuple(t.shape) for name, t in reference["state"].items()}
        models, cases, updates = {}, {}, {}
        for site, files in sorted(outputs.items()):
            model = load_model_file(files[MODEL_NAME], f"the model of site {site!r}")
            got = {name: tuple(t.shape) for name, t in model["state"].items()}
            if got != shapes:
                raise InvalidInput(
                    f"site {site!r} sent weights whose names or shapes are not the global model's"
                )
            update = json.loads(files[UPDATE_NAME])
            count = update.get("cases")
            if not isinstance(count, int) or count < 1:
                raise InvalidInput(f"site {site!r} reports {count!r} training cases")
            models[site], cases[site], updates[site] = model, count, update
        labels = {site: [s["label"] for s in m["config"]["segments"]] for site, m in models.items()}
        if len({tuple(v) for v in labels.values()}) > 1:
            raise InvalidInput(f"the sites learned different segments: {labels}")
        total = sum(cases.values())
        state = {}
        for name, tensor in reference["state"].items():
            if torch.is_floating_point(tensor):
                state[name] = sum(
                    models[site]["state"][name].double() * (cases[site] / total) for site in models
                ).to(tensor.dtype)
            else:  # counters (e.g. batches tracked) are not averaged
                state[name] = models[min(models)]["state"][name]
        first = models[min(models)]
        spacing = [
            sum(models[s]["config"]["spacing"][axis] * cases[s] for s in models) / total
            for axis in range(3)
        ]
        config = {**first["config"], "spacing": spacing}
        history = json.loads(current.get(HISTORY_NAME, b'{"rounds": []}'))
        dice_labels = sorted(updates[min(updates)]["validation_dice"])
        history["rounds"].append(
            {
                "round": round,
                "cases": cases,
                "local_loss": _weighted_mean({s: u["loss"] for s, u in updates.items()}, cases),
                "local_validation_dice": {
                    label: _weighted_mean(
                        {s: u["validation_dice"][label] for s, u in updates.items()}, cases
                    )
                    for label in dice_labels
                },
            }
        )
        model = {"format": first["format"], "config": config, "state": state}
        return {MODEL_NAME: _save(model), HISTORY_NAME: json.dumps(history).encode()}

    def broadcast(self, current: Files) -> Files:
        return {MODEL_NAME: current[MODEL_NAME]}

    def summary(self, current: Files) -> dict[str, Any]:
        history: dict[str, Any] = json.loads(current.get(HISTORY_NAME, b'{"rounds": []}'))
        return {"model_bytes": len(current[MODEL_NAME]), **history}


class ModelRegistration:
    """After the last round: the global model into the orchestrator's model registry (the
    admin project), once per federated run even when the commit of the last round repeats."""

    def __init__(self, *, models: ModelRegistry, projects: Projects, results: ObjectStore):
        self._models = models
        self._projects = projects
        self._results = results

    def __call__(self, run_pk: int, params: Mapping[str, Any], current: Files) -> dict[str, Any]:
        parameters = FederatedTrainingParameters.model_validate(dict(params))
        name = parameters.model_name
        project_pk = self._projects.get(ADMIN_PROJECT).id
        registered = [
            m
            for m in self._models.list_models(project_pk=project_pk)
            if m.name == name and m.metrics.get("federated_run") == run_pk
        ]
        if not registered:
            key = final_model_key(run_pk)
            self._results.put(key, current[MODEL_NAME])
            model = load_model_file(current[MODEL_NAME], "the global model")
            history = json.loads(current[HISTORY_NAME])["rounds"]
            registered = [
                self._models.register(
                    project_pk=project_pk,
                    run_id=None,
                    name=name,
                    storage_key=key,
                    labels=model["config"]["segments"],
                    modality=parameters.modality,
                    metrics={
                        "federated_run": run_pk,
                        "rounds": len(history),
                        "cases": sum(history[-1]["cases"].values()) if history else 0,
                        "local_validation_dice": history[-1]["local_validation_dice"]
                        if history
                        else {},
                        "proximal_mu": parameters.proximal_mu,
                    },
                )
            ]
        found = registered[0]
        return {"model": {"name": found.name, "version": found.version, "project": found.project}}


def training_plan(
    *, models: ModelRegistry, projects: Projects, results: ObjectStore
) -> FederatedPlan:
    return FederatedPlan(
        name=WORKFLOW_NAME,
        workflow=WORKFLOW_NAME,
        aggregator=FederatedAveraging(),
        description="The train-segmentation U-Net trained at every site from the global "
        "weights, averaged by training cases (FedAvg; FedProx with proximal_mu > 0); the final "
        "model registered at the orchestrator (with push_model, at every site too).",
        default_rounds=5,
        finish=ModelRegistration(models=models, projects=projects, results=results),
        pushes_model=pushes_model,
    )


__all__ = [
    "HISTORY_NAME",
    "MODEL_NAME",
    "PROVENANCE_NAME",
    "UPDATE_NAME",
    "WORKFLOW_NAME",
    "FederatedAveraging",
    "ModelRegistration",
    "final_model_key",
    "load_model_file",
    "pushes_model",
    "training_plan",
]
