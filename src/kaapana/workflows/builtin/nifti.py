"""convert-to-nifti: each image series to NIfTI with its BIDS sidecar, kept as artifacts."""

from kaapana.errors import InvalidInput
from kaapana.operators.nifti import ConvertToNiftiParameters, convert_series
from kaapana.workflows.builtin import series_files
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import Step, Workflow


def run_convert_to_nifti(ctx: TaskContext) -> None:
    """dcm2niix over this series' files; a SEG is refused, as its label map needs the grid of
    its image series, which a per-series task does not see (use ``seg_to_nifti`` on both)."""
    series = ctx.series[0]
    if series.modality == "SEG":
        raise InvalidInput(
            f"series {series.series_instance_uid} is a SEG: convert-to-nifti converts image "
            "series; a SEG needs its referenced image series, which this task does not see"
        )
    converted = convert_series(
        series_files(ctx), ctx.output_dir, ConvertToNiftiParameters.model_validate(ctx.params)
    )
    ctx.add_artifact(converted.image)
    ctx.add_artifact(converted.sidecar)
    ctx.logger.info("wrote %s and %s", converted.image.name, converted.sidecar.name)
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="convert-to-nifti",
        version="1.0",
        description="Converts each image series to NIfTI with dcm2niix, with its BIDS JSON "
        "sidecar, kept as artifacts.",
        parameters=ConvertToNiftiParameters,
        steps=[Step(name="convert-to-nifti", operator=run_convert_to_nifti, timeout=1800)],
    ),
]
