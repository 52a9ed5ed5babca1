"""evaluate-segmentation: prediction SEGs against reference SEGs of the same image series."""

from collections import defaultdict

from pydicom import Dataset

from kaapana.errors import InvalidInput
from kaapana.operators.evaluation import EvaluateSegmentationParameters, evaluate_pair
from kaapana.operators.evaluation_report import PairResult, write_results
from kaapana.operators.series import read_series
from kaapana.workflows.builtin import referenced_seg_image
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Resources, Step, Workflow


def _image_uid(seg: Dataset) -> str:
    referenced = [str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])]
    return referenced[0] if referenced else ""


def run_evaluate_segmentation(ctx: TaskContext) -> None:
    """Pair each prediction with the reference SEG of its image series and score every label;
    a series that cannot be evaluated is named in the report and the log, the others go on."""
    parameters = EvaluateSegmentationParameters.model_validate(ctx.params)
    segs: dict[str, dict[str, list[Dataset]]] = {
        "prediction": defaultdict(list),
        "reference": defaultdict(list),
    }
    problems: list[str] = []
    folders = ctx.input_dirs()
    for series in ctx.series:
        roles = parameters.role(series.tags, series.datasets)
        uid = series.series_instance_uid
        if not roles:
            continue
        if len(roles) == 2:
            problems.append(f"series {uid} is selected as prediction and as reference")
            continue
        if series.modality != "SEG":
            problems.append(f"series {uid} is {series.modality}, not a SEG")
            continue
        for seg in read_series(sorted(p for p in folders[uid].iterdir() if p.is_file())):
            segs[roles.pop()][_image_uid(seg)].append(seg)
    pairs = []
    for image_uid, predictions in sorted(segs["prediction"].items()):
        references = segs["reference"].get(image_uid, [])
        for prediction in predictions:
            uid = str(prediction.SeriesInstanceUID)
            if len(references) != 1:
                problems.append(
                    f"prediction {uid}: {len(references)} reference SEGs of image series "
                    f"{image_uid}, one needed"
                )
                continue
            try:
                image = read_series(referenced_seg_image(ctx, prediction))
                metrics = evaluate_pair(image, references[0], prediction, parameters)
            except InvalidInput as exc:
                problems.append(f"prediction {uid}: {exc.detail}")
                continue
            pairs.append(PairResult(uid, str(references[0].SeriesInstanceUID), image_uid, metrics))
    for problem in problems:
        ctx.logger.warning("not evaluated: %s", problem)
    if not pairs:
        raise InvalidInput(
            "no prediction could be evaluated: "
            + ("; ".join(problems) if problems else "the input has no selected prediction SEG")
        )
    for path in write_results(pairs, problems, ctx.output_dir):
        ctx.add_artifact(path)
    ctx.logger.info("%d predictions evaluated, %d problems", len(pairs), len(problems))
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="evaluate-segmentation",
        version="1.0",
        description="Dice, IoU, HD95 and volume difference per label of prediction SEGs against "
        "reference SEGs of the same image series (chosen by tag or dataset): CSV and HTML report.",
        parameters=EvaluateSegmentationParameters,
        steps=[
            Step(
                name="evaluate-segmentation",
                operator=run_evaluate_segmentation,
                mode=ModeValues.per_run,
                timeout=3600,
                references=True,
                resources=Resources(cpu=1, memory_mb=3000),
            )
        ],
    ),
]
