"""The model registry's hooks for workflows: the ``register-model`` action of training tasks
and the ``model`` resolver of runs that apply a model."""

from typing import Any, Final

from kaapana.errors import InvalidInput
from kaapana.models.registry import ModelRegistry
from kaapana.workflows.actions import ActionHandler, ActionRequest
from kaapana.workflows.results import artifact_key

REGISTER_MODEL: Final = "register-model"
MODEL_RESOLVER: Final = "model"


def register_model_handler(registry: ModelRegistry) -> ActionHandler:
    """``register-model`` with ``name``, ``artifact`` (the model file's artifact name, e.g.
    ``train-segmentation/model.pt``), ``labels``, ``modality`` and ``metrics``: registers the
    artifact the task kept as the next version of ``name`` in the run's project."""

    def handle(request: ActionRequest) -> str:
        payload: dict[str, Any] = dict(request.payload)
        missing = [key for key in ("name", "artifact", "labels", "modality") if key not in payload]
        if missing:
            raise InvalidInput(f"{REGISTER_MODEL}: the payload lacks {missing}")
        metrics = payload.get("metrics") or {}
        if not isinstance(metrics, dict) or not isinstance(payload["labels"], list):
            raise InvalidInput(f"{REGISTER_MODEL}: 'metrics' must be an object, 'labels' a list")
        model = registry.register(
            project_pk=request.project_pk,
            run_id=request.run_id,
            name=str(payload["name"]),
            storage_key=artifact_key(request.run_id, str(payload["artifact"])),
            labels=payload["labels"],
            modality=str(payload["modality"]),
            metrics=metrics,
        )
        return f"{REGISTER_MODEL}: {model.name} version {model.version} in project {model.project}"

    return handle


__all__ = ["MODEL_RESOLVER", "REGISTER_MODEL", "register_model_handler"]
