"""federated-training, the local part: train-segmentation's preparation and training from the
round's global weights, keeping only the model file and the number of training cases to send
(the ``ml`` extra, as train-segmentation)."""

import json
from pathlib import Path

from kaapana.errors import InvalidInput
from kaapana.federation.training import MODEL_NAME, UPDATE_NAME, WORKFLOW_NAME
from kaapana.operators.segmentation_parameters import FederatedTrainingParameters
from kaapana.operators.training_data import pair_cases
from kaapana.workflows.builtin.ml import PREPARE_STEP, prepare_volumes
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Resources, Step, Workflow

LOCAL_STEP = "train-local"


def run_prepare_local(ctx: TaskContext) -> None:
    """train-segmentation's preparation of this series, under the federated parameters."""
    prepare_volumes(ctx, FederatedTrainingParameters.model_validate(ctx.params))


def run_local_training(ctx: TaskContext) -> None:
    """Pair, split by patient, train ``epochs`` epochs from the global weights (with FedProx's
    proximal term when ``proximal_mu`` > 0); the model file and ``update.json`` are kept."""
    import torch

    from kaapana.operators.train_segmentation import train_segmentation

    parameters = FederatedTrainingParameters.model_validate(ctx.params)
    source = Path(parameters.federated_input) / MODEL_NAME
    if not parameters.federated_input or not source.is_file():
        raise InvalidInput("the job carries no global model: run it as a federated job")
    initial = torch.load(source, map_location="cpu", weights_only=True)["state"]
    cases, specs, _unlabelled = pair_cases(ctx.input_dirs().values())
    ctx.logger.info("training on %d image + SEG pairs from the global model", len(cases))
    result = train_segmentation(
        cases,
        specs,
        parameters,
        ctx.output_dir,
        checkpoint_dir=ctx.checkpoint_dir,
        initial_state=initial,
        proximal_mu=parameters.proximal_mu,
        log=ctx.logger.info,
        progress=lambda fraction: ctx.progress(0.99 * fraction),
    )
    update = ctx.output_dir / UPDATE_NAME
    update.write_text(
        json.dumps(
            {
                "cases": result.train_cases,
                "loss": result.history[result.best_epoch - 1]["loss"],
                "validation_dice": result.validation_dice,
            }
        )
    )
    ctx.add_artifact(result.model)
    ctx.add_artifact(update)
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name=WORKFLOW_NAME,
        version="1.0",
        description="One site's round of federated training: the train-segmentation U-Net "
        "trained for the local epochs from the global weights; only the model file and the "
        "number of training cases leave.",
        parameters=FederatedTrainingParameters,
        federated_outputs=(MODEL_NAME, UPDATE_NAME),
        federated_weights=(MODEL_NAME,),
        steps=[
            Step(name=PREPARE_STEP, operator=run_prepare_local, timeout=1800),
            Step(
                name=LOCAL_STEP,
                operator=run_local_training,
                mode=ModeValues.per_run,
                upstream=(PREPARE_STEP,),
                timeout=86_400,
                retries=1,
                resources=Resources(cpu=2, memory_mb=8000),
            ),
        ],
    ),
]
