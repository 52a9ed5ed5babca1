"""segment-ct and segment-otsu: a SEG per series, stored back into the run's project."""

from kaapana.operators.segment_ct import SegmentCTParameters, segment_ct
from kaapana.operators.segment_otsu import SegmentOtsuParameters, segment_otsu
from kaapana.workflows.builtin import save_part10, series_datasets
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import Resources, Step, Workflow


def run_segment_ct(ctx: TaskContext) -> None:
    """Body, lungs and bones of a CT series as a SEG that re-enters the archive."""
    seg = segment_ct(series_datasets(ctx), SegmentCTParameters.model_validate(ctx.params))
    ctx.progress(0.9)
    ctx.store_dicom([save_part10(seg, ctx.output_dir)])
    ctx.logger.info("stored SEG %s with %d segments", seg.SOPInstanceUID, len(seg.SegmentSequence))
    ctx.progress(1)


def run_segment_otsu(ctx: TaskContext) -> None:
    """Otsu's foreground of a grey-scale (MR) series as a SEG that re-enters the archive."""
    seg = segment_otsu(series_datasets(ctx), SegmentOtsuParameters.model_validate(ctx.params))
    ctx.progress(0.9)
    ctx.store_dicom([save_part10(seg, ctx.output_dir)])
    ctx.logger.info("stored SEG %s", seg.SOPInstanceUID)
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="segment-ct",
        version="1.0",
        description="Body, lungs and bones of each CT series by thresholds and morphology, "
        "stored as a DICOM SEG in the run's project.",
        parameters=SegmentCTParameters,
        steps=[
            Step(
                name="segment-ct",
                operator=run_segment_ct,
                timeout=1800,
                resources=Resources(cpu=1, memory_mb=3000),
            )
        ],
    ),
    Workflow(
        name="segment-otsu",
        version="1.0",
        description="Otsu's foreground of each MR series as a one-segment DICOM SEG, stored in "
        "the run's project.",
        parameters=SegmentOtsuParameters,
        steps=[
            Step(
                name="segment-otsu",
                operator=run_segment_otsu,
                timeout=1800,
                resources=Resources(cpu=1, memory_mb=2000),
            )
        ],
    ),
]
