"""train-test-split, tag-dataset and delete-series: curating the input series of a run.

The tasks decide; the changes are platform actions (``tag-series``, ``delete-series``) that the
scheduler side carries out once the task succeeded, since workers never open the database.
"""

import csv
import json
from collections.abc import Callable, Sequence
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kaapana.auth.roles import PermissionValues
from kaapana.catalog.tags import MAX_SERIES_PER_CALL, check_tag
from kaapana.catalog.workflow_actions import DELETE_SERIES, TAG_SERIES
from kaapana.errors import InvalidInput
from kaapana.operators.split import (
    SplitValues,
    TrainTestSplitParameters,
    split_items,
    split_patients,
)
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, NoParameters, Step, Workflow


def _request_tags(
    ctx: TaskContext, series: Sequence[str], *, add: Sequence[str], remove: Sequence[str]
) -> None:
    for start in range(0, len(series), MAX_SERIES_PER_CALL):
        chunk = list(series[start : start + MAX_SERIES_PER_CALL])
        ctx.request(TAG_SERIES, series=chunk, add=list(add), remove=list(remove))


def run_train_test_split(ctx: TaskContext) -> None:
    """Split the input series by patient and stratum; tag each series with its part."""
    parameters = TrainTestSplitParameters.model_validate(ctx.params)
    items = split_items(
        [(s.series_instance_uid, s.metadata, s.tags) for s in ctx.series], parameters.stratify_by
    )
    split = split_patients(items, parameters)
    table = ctx.output_dir / "split.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["SeriesInstanceUID", "PatientID", "stratum", "part"])
        for item in items:
            writer.writerow(
                [
                    item.series_instance_uid,
                    item.patient_id,
                    split.strata[item.patient_id],
                    split.parts[item.series_instance_uid].value,
                ]
            )
    summary = ctx.output_dir / "summary.json"
    counts = split.counts(items)
    summary.write_text(
        json.dumps({"parameters": parameters.model_dump(mode="json"), "strata": counts}, indent=2)
    )
    ctx.add_artifact(table)
    ctx.add_artifact(summary)
    for part in SplitValues:
        members = [uid for uid, found in split.parts.items() if found is part]
        others = [parameters.tag(other) for other in SplitValues if other is not part]
        if members:
            _request_tags(ctx, members, add=[parameters.tag(part)], remove=others)
        ctx.logger.info("%s: %d series", parameters.tag(part), len(members))
    ctx.progress(1)


class TagDatasetParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[str] = Field(default_factory=list, max_length=100, description="Tags to add.")
    remove: list[str] = Field(default_factory=list, max_length=100, description="Tags to remove.")

    @field_validator("add", "remove")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        try:
            return list(dict.fromkeys(check_tag(value) for value in values))
        except InvalidInput as exc:
            raise ValueError(exc.detail) from exc

    @model_validator(mode="after")
    def _some_change(self) -> Self:
        if not self.add and not self.remove:
            raise ValueError("give tags to add or to remove")
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(f"tags both added and removed: {both}")
        return self


def run_tag_dataset(ctx: TaskContext) -> None:
    """Add and remove the tags on every input series."""
    parameters = TagDatasetParameters.model_validate(ctx.params)
    uids = [s.series_instance_uid for s in ctx.series]
    _request_tags(ctx, uids, add=parameters.add, remove=parameters.remove)
    ctx.logger.info(
        "%d series: adding %s, removing %s", len(uids), parameters.add, parameters.remove
    )
    ctx.progress(1)


def run_delete_series(ctx: TaskContext) -> None:
    """Ask for the deletion of every input series from the project, listed in ``deleted.json``
    first (the run's manifest, written later, no longer finds them)."""
    listing = [
        {
            "SeriesInstanceUID": s.series_instance_uid,
            "StudyInstanceUID": s.study_instance_uid,
            "Modality": s.modality,
            "NumberOfSeriesRelatedInstances": s.number_of_instances,
        }
        for s in ctx.series
    ]
    target = ctx.output_dir / "deleted.json"
    target.write_text(json.dumps({"project": ctx.project, "series": listing}, indent=2))
    ctx.add_artifact(target)
    ctx.request(DELETE_SERIES, series=[s.series_instance_uid for s in ctx.series])
    ctx.logger.info("deleting %d series from project %s", len(listing), ctx.project)
    ctx.progress(1)


def _per_run(name: str, operator: Callable[[TaskContext], None]) -> Step:
    return Step(name=name, operator=operator, mode=ModeValues.per_run, timeout=600)


WORKFLOWS = [
    Workflow(
        name="train-test-split",
        version="1.0",
        description="Splits the input series by patient into train, test and optionally "
        "validation, stratified and seeded, and tags each series with its part.",
        parameters=TrainTestSplitParameters,
        steps=[_per_run("train-test-split", run_train_test_split)],
    ),
    Workflow(
        name="tag-dataset",
        version="1.0",
        description="Adds and removes tags on every input series.",
        parameters=TagDatasetParameters,
        steps=[_per_run("tag-dataset", run_tag_dataset)],
    ),
    Workflow(
        name="delete-series",
        version="1.0",
        description="Deletes the input series from the run's project (and from the archive "
        "where no other project holds them). Needs a principal investigator or an admin.",
        parameters=NoParameters,
        permission=PermissionValues.manage,
        steps=[_per_run("delete-series", run_delete_series)],
    ),
]
