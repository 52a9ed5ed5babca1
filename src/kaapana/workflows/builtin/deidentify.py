"""de-identify: each series by the PS3.15 Annex E profile, stored into a target project."""

from pydantic import Field

from kaapana.errors import InvalidInput
from kaapana.operators.deidentify import DeidentifyParameters, deidentify_files
from kaapana.workflows.builtin import series_files
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import Step, Workflow
from kaapana.workflows.secrets import project_key


class DeidentifyWorkflowParameters(DeidentifyParameters):
    target_project: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Project that receives the de-identified objects (and whose key makes the "
        "pseudonyms); unset: the run's project. Needs write access there.",
    )


def run_deidentify(ctx: TaskContext) -> None:
    """De-identify this series with the target project's key; keep the report as an artifact."""
    parameters = DeidentifyWorkflowParameters.model_validate(ctx.params)
    target = parameters.target_project or ctx.project
    if ctx.secrets_dir is None:
        raise InvalidInput("de-identify needs the installation's secrets folder")
    report = deidentify_files(
        series_files(ctx),
        ctx.output_dir,
        key=project_key(ctx.secrets_dir, target),
        parameters=DeidentifyParameters.model_validate(
            parameters.model_dump(exclude={"target_project"})
        ),
    )
    ctx.store_dicom([ctx.output_dir / item.output for item in report.objects], project=target)
    ctx.add_artifact(ctx.output_dir / "report.json")
    ctx.logger.info("de-identified %d objects into project %s", len(report.objects), target)
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="de-identify",
        version="1.0",
        description="De-identifies each series by the DICOM PS3.15 Annex E Basic Profile "
        "(with options) and stores the result into a target project.",
        parameters=DeidentifyWorkflowParameters,
        project_params=("target_project",),
        steps=[Step(name="de-identify", operator=run_deidentify, timeout=1800)],
    ),
]
