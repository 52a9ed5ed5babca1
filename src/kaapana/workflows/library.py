"""Built-in workflows, registered through the same path as any plugin's."""

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import INPUT_STEP, ModeValues, Step, Workflow


def noop(ctx: TaskContext) -> None:
    """Does nothing: measures the engine, checks that a cluster runs tasks."""


class SeriesMetadataParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indent: int | None = Field(None, ge=0, le=8, description="Indent of the JSON; none: compact.")


def series_metadata(ctx: TaskContext) -> None:
    """One JSON per series: its UIDs, modality, instance count and series-level DICOM JSON."""
    series = ctx.series[0]
    files = sorted(path.name for path in ctx.input_dir.iterdir())
    document = {
        "SeriesInstanceUID": series.series_instance_uid,
        "StudyInstanceUID": series.study_instance_uid,
        "Modality": series.modality,
        "NumberOfSeriesRelatedInstances": series.number_of_instances,
        "files": files,
        "metadata": series.metadata,
    }
    target = Path(ctx.output_dir) / "series.json"
    target.write_text(json.dumps(document, indent=ctx.params.get("indent"), sort_keys=True))
    ctx.logger.info("wrote %s with %d files", target.name, len(files))
    ctx.progress(1)
    ctx.add_artifact(target)


def builtin_workflows() -> list[Workflow]:
    return [
        Workflow(
            name="noop",
            version="1.0",
            description="One task per series that does nothing (engine checks and benchmarks).",
            steps=[Step(name="noop", operator=noop, mode=ModeValues.per_series)],
        ),
        Workflow(
            name="series-metadata",
            version="1.0",
            description=f"Writes a JSON summary of each series (from its {INPUT_STEP} folder and "
            "the index) and keeps it as an artifact.",
            parameters=SeriesMetadataParameters,
            steps=[Step(name="series-metadata", operator=series_metadata, retries=1)],
        ),
    ]


__all__ = ["builtin_workflows", "noop", "series_metadata"]
