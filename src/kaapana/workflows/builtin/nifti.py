"""convert-to-nifti: each image series to NIfTI with its BIDS sidecar, each SEG to a label map
on the grid of its image's NIfTI; kept as artifacts."""

import tempfile
from pathlib import Path

from kaapana.operators.nifti import ConvertToNiftiParameters, convert_series, seg_to_nifti
from kaapana.operators.series import read_series
from kaapana.workflows.builtin import referenced_seg_image, series_files, series_seg
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import Step, Workflow


def run_convert_to_nifti(ctx: TaskContext) -> None:
    """dcm2niix over an image series; a SEG becomes a label map on exactly the voxel grid of
    its image series' dcm2niix NIfTI (which the step's references bring in)."""
    parameters = ConvertToNiftiParameters.model_validate(ctx.params)
    if ctx.series[0].modality == "SEG":
        seg = series_seg(ctx)
        image_files = referenced_seg_image(ctx, seg)
        with tempfile.TemporaryDirectory(prefix="kaapana-seg-reference-") as temp:
            reference = convert_series(image_files, Path(temp), parameters)
            labels = seg_to_nifti(
                seg,
                read_series(image_files),
                ctx.output_dir,
                reference=reference.image,
                filename=parameters.filename,
            )
        ctx.add_artifact(labels.label_map)
        ctx.add_artifact(labels.labels)
        ctx.logger.info("wrote %s and %s", labels.label_map.name, labels.labels.name)
        ctx.progress(1)
        return
    converted = convert_series(series_files(ctx), ctx.output_dir, parameters)
    ctx.add_artifact(converted.image)
    ctx.add_artifact(converted.sidecar)
    ctx.logger.info("wrote %s and %s", converted.image.name, converted.sidecar.name)
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="convert-to-nifti",
        version="1.1",
        description="Converts each image series to NIfTI with dcm2niix, with its BIDS JSON "
        "sidecar, and each SEG to a NIfTI label map aligned with its image; kept as artifacts.",
        parameters=ConvertToNiftiParameters,
        steps=[
            Step(
                name="convert-to-nifti",
                operator=run_convert_to_nifti,
                timeout=1800,
                references=True,
            )
        ],
    ),
]
