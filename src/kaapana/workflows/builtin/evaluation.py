"""evaluate-segmentation: prediction SEGs against reference SEGs of the same image series.

Each prediction is scored in a task of its own, which fails with the reason when the pair
cannot be scored (no reference SEG, no image series, segments or geometry that do not match);
the run's report then covers the predictions that were scored."""

from pydicom import Dataset

from kaapana.errors import InvalidInput
from kaapana.operators.evaluation import EvaluateSegmentationParameters, evaluate_pair
from kaapana.operators.evaluation_report import PairResult, read_pair, write_pair, write_results
from kaapana.operators.series import read_series
from kaapana.workflows.builtin import referenced_seg_image, series_seg
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Resources, Step, Workflow

PAIR_STEP = "evaluate"
PAIR_JSON = "pair.json"


def _image_uid(seg: Dataset) -> str:
    referenced = [str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])]
    return referenced[0] if referenced else ""


def _references(
    ctx: TaskContext, parameters: EvaluateSegmentationParameters, image_uid: str
) -> list[Dataset]:
    """The reference SEGs among the run's other SEGs of the prediction's image series."""
    folders = ctx.companion_dirs()
    return [
        seg
        for companion in ctx.companions
        if companion.modality == "SEG"
        and parameters.role(companion.tags, companion.datasets) == {"reference"}
        for seg in read_series(
            sorted(p for p in folders[companion.series_instance_uid].iterdir() if p.is_file())
        )
        if _image_uid(seg) == image_uid
    ]


def run_evaluate_pair(ctx: TaskContext) -> None:
    """Score this prediction SEG against the one reference SEG of its image series; references
    (scored with their predictions) and series of neither role have nothing to do alone."""
    parameters = EvaluateSegmentationParameters.model_validate(ctx.params)
    series = ctx.series[0]
    uid = series.series_instance_uid
    roles = parameters.role(series.tags, series.datasets)
    if len(roles) == 2:
        raise InvalidInput(f"series {uid} is selected as prediction and as reference")
    if roles != {"prediction"}:
        role = "a reference" if roles else "neither a prediction nor a reference"
        ctx.logger.info("series %s is %s: nothing to score on its own", uid, role)
        ctx.progress(1)
        return
    prediction = series_seg(ctx)
    image_uid = _image_uid(prediction)
    references = _references(ctx, parameters, image_uid)
    if len(references) != 1:
        raise InvalidInput(
            f"prediction {uid}: {len(references)} reference SEGs of image series "
            f"{image_uid or 'none'}, one needed"
        )
    reference = references[0]
    image = read_series(referenced_seg_image(ctx, prediction))
    ctx.progress(0.2)
    try:
        metrics = evaluate_pair(image, reference, prediction, parameters)
    except InvalidInput as exc:
        raise InvalidInput(f"prediction {uid}: {exc.detail}") from exc
    pair = PairResult(uid, str(reference.SeriesInstanceUID), image_uid, metrics)
    ctx.add_artifact(write_pair(pair, ctx.output_dir / PAIR_JSON))
    ctx.logger.info("prediction %s: %d labels scored against %s", uid, len(metrics), pair.reference)
    ctx.progress(1)


def run_evaluation_report(ctx: TaskContext) -> None:
    """The scored pairs in one table and report. The step is partial: a prediction whose task
    failed is not among the series, and its task's error says why."""
    pairs = [
        read_pair(folder / PAIR_JSON)
        for folder in ctx.input_dirs().values()
        if (folder / PAIR_JSON).is_file()
    ]
    if not pairs:
        raise InvalidInput(
            "no prediction SEG was scored: the inputs select none, or every prediction's "
            f"{PAIR_STEP!r} task failed (its error says why)"
        )
    for path in write_results(pairs, ctx.output_dir):
        ctx.add_artifact(path)
    ctx.logger.info("%d predictions in the report", len(pairs))
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="evaluate-segmentation",
        version="2.0",
        description="Dice, IoU, HD95 and volume difference per label of prediction SEGs against "
        "reference SEGs of the same image series (chosen by tag or dataset): CSV and HTML report.",
        parameters=EvaluateSegmentationParameters,
        steps=[
            Step(
                name=PAIR_STEP,
                operator=run_evaluate_pair,
                timeout=1800,
                references=True,
                companions=True,
                resources=Resources(cpu=1, memory_mb=3000),
            ),
            Step(
                name="evaluate-segmentation",
                operator=run_evaluation_report,
                mode=ModeValues.per_run,
                upstream=(PAIR_STEP,),
                partial=True,
                timeout=600,
            ),
        ],
    ),
]
