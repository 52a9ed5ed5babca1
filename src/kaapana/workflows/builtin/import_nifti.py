"""import-nifti: a folder of NIfTI files (plain or nnU-Net layout) into the run's project."""

import os
from pathlib import Path

from pydantic import Field, field_validator

from kaapana.operators.import_nifti import ImportNiftiParameters, import_nifti
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow


class ImportNiftiWorkflowParameters(ImportNiftiParameters):
    source_dir: str = Field(
        min_length=1,
        max_length=4096,
        description="Absolute path of the folder to import, readable by the workers.",
    )

    @field_validator("source_dir")
    @classmethod
    def _readable_folder(cls, value: str) -> str:
        path = Path(value)
        if not path.is_absolute():
            raise ValueError("must be an absolute path")
        if not path.is_dir():
            raise ValueError("is not an existing folder")
        if not os.access(path, os.R_OK | os.X_OK):
            raise ValueError("is not readable")
        return str(path.resolve())


def run_import_nifti(ctx: TaskContext) -> None:
    """Import the folder into DICOM series and SEG, and store every created file."""
    parameters = ImportNiftiWorkflowParameters.model_validate(ctx.params)
    cases = import_nifti(
        Path(parameters.source_dir),
        ctx.output_dir,
        ImportNiftiParameters.model_validate(parameters.model_dump(exclude={"source_dir"})),
    )
    created = [path for case in cases for series in case.series for path in series]
    created += [case.segmentation for case in cases if case.segmentation is not None]
    ctx.store_dicom(created)
    ctx.logger.info("imported %d cases, %d files", len(cases), len(created))
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="import-nifti",
        version="1.0",
        description="Imports a folder of NIfTI images and label maps (metadata.json or an "
        "nnU-Net raw dataset) as DICOM series and SEG into the run's project.",
        parameters=ImportNiftiWorkflowParameters,
        needs_series=False,
        steps=[
            Step(
                name="import-nifti",
                operator=run_import_nifti,
                mode=ModeValues.per_run,
                timeout=3600,
            )
        ],
    ),
]
