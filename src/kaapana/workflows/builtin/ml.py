"""train-segmentation and predict-segmentation: a MONAI 3-D U-Net trained on the image + SEG
pairs of a run and registered as a model; a registered model applied to image series, each
result stored as a SEG (the ``ml`` extra: torch and MONAI).

torch and MONAI are checked for when this module loads (so a missing ``ml`` extra is a load
error of this source alone) but imported only inside the steps that need them: every process
that lists workflows (server, CLI) and the per-series preparation would otherwise pay seconds
for importing torch. A training or prediction task imports it once in its own process.
"""

import importlib.util
from pathlib import Path

from kaapana.errors import InvalidInput
from kaapana.operators.segmentation_parameters import (
    PredictSegmentationParameters,
    TrainSegmentationParameters,
    check_model_modality,
)
from kaapana.operators.training_data import export_series, pair_cases
from kaapana.workflows.builtin import save_part10, series_datasets
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Resources, Step, Workflow


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # a module whose import was blocked (``sys.modules[name] = None``)
        return False


_MISSING = [name for name in ("torch", "monai") if not _installed(name)]
if _MISSING:
    raise ImportError(f"{_MISSING} not installed: pip install 'kaapana[ml]'")

PREPARE_STEP = "prepare-volumes"
TRAIN_STEP = "train-segmentation"
PREDICT_STEP = "predict-segmentation"


def run_prepare_volumes(ctx: TaskContext) -> None:
    """This series as voxels: an image series' volume, or a SEG's frames of the labels to
    learn; pairing waits for the training step, which sees every series."""
    prepare_volumes(ctx, TrainSegmentationParameters.model_validate(ctx.params))


def prepare_volumes(ctx: TaskContext, parameters: TrainSegmentationParameters) -> None:
    export_series(
        series_datasets(ctx),
        ctx.output_dir,
        labels=parameters.labels,
        modality=parameters.modality,
        spacing_tolerance_mm=parameters.spacing_tolerance_mm,
    )
    ctx.progress(1)


def run_train_segmentation(ctx: TaskContext) -> None:
    """Pair, split by patient, train, keep metrics and the model, and ask for its registration."""
    from kaapana.operators import train_segmentation as training

    parameters = TrainSegmentationParameters.model_validate(ctx.params)
    cases, specs, unlabelled = pair_cases(ctx.input_dirs().values())
    if unlabelled:
        ctx.logger.info("%d image series without a SEG are not used", len(unlabelled))
    ctx.logger.info("training on %d image + SEG pairs", len(cases))
    result = training.train_segmentation(
        cases,
        specs,
        parameters,
        ctx.output_dir,
        checkpoint_dir=ctx.checkpoint_dir,
        log=ctx.logger.info,
        progress=lambda fraction: ctx.progress(0.99 * fraction),
    )
    kept = (training.METRICS_CSV, training.METRICS_JSON, training.METRICS_PLOT, training.SPLIT_FILE)
    for name in (result.model.name, *kept):
        ctx.add_artifact(ctx.output_dir / name)
    ctx.request(
        "register-model",
        name=parameters.model_name,
        artifact=f"{ctx.step}/{result.model.name}",
        labels=result.config.segments,
        modality=parameters.modality,
        metrics={
            "validation_dice": result.validation_dice,
            "best_epoch": result.best_epoch,
            "epochs": len(result.history),
            "train_patients": len(result.train_patients),
            "validation_patients": len(result.validation_patients),
            "cases": len(cases),
        },
    )
    ctx.progress(1)


def run_predict_segmentation(ctx: TaskContext) -> None:
    """The run's model (resolved when the run was created) over this series, stored as a SEG."""
    from kaapana.operators.predict_segmentation import predict_segmentation

    parameters = PredictSegmentationParameters.model_validate(ctx.params)
    model = ctx.resolved.get("model")
    if not model:
        raise InvalidInput("the run carries no resolved model: start it through the platform")
    name = f"{model['name']}/{model['version']}"
    check_model_modality(name, model["modality"], ctx.series[0].modality)
    seg = predict_segmentation(
        series_datasets(ctx),
        Path(model["path"]),
        parameters,
        sha256=model["sha256"],
        model_name=name,
        logger=ctx.logger,
    )
    ctx.progress(0.9)
    ctx.store_dicom([save_part10(seg, ctx.output_dir)])
    ctx.logger.info("stored SEG %s of model %s", seg.SOPInstanceUID, name)
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="train-segmentation",
        version="1.0",
        description="Trains a MONAI 3-D U-Net on the image + SEG pairs of the run (split by "
        "patient) and registers it in the model registry.",
        parameters=TrainSegmentationParameters,
        steps=[
            Step(name=PREPARE_STEP, operator=run_prepare_volumes, timeout=1800),
            Step(
                name=TRAIN_STEP,
                operator=run_train_segmentation,
                mode=ModeValues.per_run,
                upstream=(PREPARE_STEP,),
                timeout=86_400,
                retries=1,
                resources=Resources(cpu=2, memory_mb=8000),
            ),
        ],
    ),
    Workflow(
        name="predict-segmentation",
        version="1.0",
        description="Applies a registered segmentation model to each series by sliding-window "
        "inference and stores the result as a DICOM SEG in the run's project.",
        parameters=PredictSegmentationParameters,
        resolve_params={"model": "model"},
        steps=[
            Step(
                name=PREDICT_STEP,
                operator=run_predict_segmentation,
                timeout=3600,
                resources=Resources(cpu=2, memory_mb=4000),
            )
        ],
    ),
]
