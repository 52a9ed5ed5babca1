"""Built-in workflows, registered through the same path as any plugin's."""

import importlib
import json
from collections.abc import Callable
from functools import partial
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


BUILTIN_MODULES = (
    "deidentify",
    "nifti",
    "segmentation",
    "import_nifti",
    "radiomics",
    "evaluation",
    "metadata",
    "pacs",
    "curation",
    "ml",
    "federated",
    "federated_radiomics",
    "federated_training",
)
"""Modules of ``kaapana.workflows.builtin`` with the operator workflows (``WORKFLOWS``)."""


def _module_workflows(module: str) -> list[Workflow]:
    return list(importlib.import_module(f"kaapana.workflows.builtin.{module}").WORKFLOWS)


def builtin_library() -> list[tuple[str, Callable[[], list[Workflow]]]]:
    """The operator workflows as separate sources: one whose libraries are missing (the
    ``workflows`` extra) is a load error of its own, and the rest still load."""
    return [(f"builtin {m}", partial(_module_workflows, m)) for m in BUILTIN_MODULES]


__all__ = ["BUILTIN_MODULES", "builtin_library", "builtin_workflows", "noop", "series_metadata"]
