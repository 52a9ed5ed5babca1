"""collect-metadata: the run's series as one table (CSV and Parquet), one row per series."""

from kaapana.operators.metadata import CollectMetadataParameters, metadata_table, write_metadata
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow


def run_collect_metadata(ctx: TaskContext) -> None:
    """The chosen attributes of every input series, from the index's series-level JSON."""
    parameters = CollectMetadataParameters.model_validate(ctx.params)
    rows = [
        {
            "series_instance_uid": s.series_instance_uid,
            "study_instance_uid": s.study_instance_uid,
            "modality": s.modality,
            "number_of_instances": s.number_of_instances,
            "tags": s.tags,
            "datasets": s.datasets,
            "metadata": s.metadata,
        }
        for s in ctx.series
    ]
    for path in write_metadata(metadata_table(rows, parameters), ctx.output_dir):
        ctx.add_artifact(path)
    ctx.logger.info("%d series, %d attributes", len(rows), len(parameters.attributes))
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="collect-metadata",
        version="1.0",
        description="The chosen DICOM attributes of every series of the run as one table, "
        "CSV and Parquet, one row per series.",
        parameters=CollectMetadataParameters,
        steps=[
            Step(
                name="collect-metadata",
                operator=run_collect_metadata,
                mode=ModeValues.per_run,
                timeout=1800,
            )
        ],
    ),
]
