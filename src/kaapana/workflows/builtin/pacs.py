"""send-dicom, query-pacs and retrieve-from-pacs: exchange with a registered DICOM node.

The node parameter names a registered node; the engine checks it when the run is created and
the scheduler hands each task its address (``ctx.node``), so workers never read the registry.
Associations call from the installation's AE title.
"""

import json
from pathlib import Path
from typing import Any

from pydicom import dcmread

from kaapana.catalog.workflow_actions import ADD_TO_DATASET
from kaapana.dicomnet.qr_scu import Retrieved, find_studies, get_study
from kaapana.dicomnet.scu import send
from kaapana.errors import InvalidInput
from kaapana.operators.pacs import (
    QueryPacsParameters,
    RetrieveFromPacsParameters,
    SendDicomParameters,
    study_identifier,
    study_rows,
    write_study_table,
)
from kaapana.workflows.builtin import series_files
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow


def run_send_dicom(ctx: TaskContext) -> None:
    """C-STORE this series' instances, as stored, to the node; report each instance."""
    parameters = SendDicomParameters.model_validate(ctx.params)
    node = ctx.node(parameters.node)
    files = series_files(ctx)
    stored: list[Path] = []

    def sent(path: Path, ok: bool) -> None:
        if ok:
            stored.append(path)
        ctx.progress(len(stored), max(len(files), 1))

    ctx.logger.info(
        "sending %d instances to %s (%s@%s:%d)",
        len(files),
        node.name,
        node.ae_title,
        node.host,
        node.port,
    )
    report = send(node, files, calling_ae_title=ctx.calling_ae_title, on_progress=sent)
    failures = dict(report.failed)
    instances = [
        {
            "SOPInstanceUID": path.stem,
            "status": "stored" if str(path) not in failures else "failed",
            "detail": failures.get(str(path), ""),
        }
        for path in files
    ]
    for item in instances:
        if item["status"] == "failed":
            ctx.logger.warning("%s not stored: %s", item["SOPInstanceUID"], item["detail"])
    target = ctx.output_dir / "report.json"
    target.write_text(
        json.dumps(
            {
                "node": node.name,
                "series_instance_uid": ctx.series_instance_uid,
                "stored": report.sent,
                "failed": len(report.failed),
                "instances": instances,
            },
            indent=2,
        )
    )
    if report.failed and not parameters.allow_failures:
        first = report.failed[0][1]
        raise InvalidInput(
            f"{len(report.failed)} of {len(files)} instances of series {ctx.series_instance_uid} "
            f"were not stored by node {node.name!r} (first: {first})"
        )
    ctx.add_artifact(target)
    ctx.logger.info("%d stored, %d failed", report.sent, len(report.failed))
    ctx.progress(1)


def run_query_pacs(ctx: TaskContext) -> None:
    """C-FIND the node's studies; the answers become ``studies.json`` and ``studies.csv``."""
    parameters = QueryPacsParameters.model_validate(ctx.params)
    node = ctx.node(parameters.node)
    found = find_studies(
        node,
        study_identifier(parameters),
        calling_ae_title=ctx.calling_ae_title,
        limit=parameters.limit,
    )
    rows = study_rows(found.studies)
    for path in write_study_table(rows, ctx.output_dir, node=node.name, truncated=found.truncated):
        ctx.add_artifact(path)
    for row in rows:  # UIDs, dates and counts only: patient identity stays out of logs
        ctx.logger.info(
            "study %s of %s: %s, %s series, %s instances",
            row["StudyInstanceUID"],
            row["StudyDate"] or "no date",
            row["ModalitiesInStudy"] or "modalities not given",
            row["NumberOfStudyRelatedSeries"] or "?",
            row["NumberOfStudyRelatedInstances"] or "?",
        )
    more = f", cut off at limit {parameters.limit}" if found.truncated else ""
    ctx.logger.info("node %s answered %d studies%s", node.name, len(rows), more)
    ctx.progress(1)


def _series_of(paths: list[Path]) -> list[str]:
    uids = {
        str(
            dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"]).get(
                "SeriesInstanceUID", ""
            )
        )
        for path in paths
    }
    return sorted(uid for uid in uids if uid)


def _problems(got: Retrieved) -> list[str]:
    found = []
    if got.failed:
        found.append(f"{got.failed} sub-operations failed")
    found += got.refused
    if not got.files:
        found.append("no instance arrived")
    return found


def run_retrieve_from_pacs(ctx: TaskContext) -> None:
    """C-GET the chosen studies, store every object, and add their series to the dataset."""
    parameters = RetrieveFromPacsParameters.model_validate(ctx.params)
    node = ctx.node(parameters.node)
    found = find_studies(
        node,
        study_identifier(parameters, parameters.study_instance_uids),
        calling_ae_title=ctx.calling_ae_title,
        limit=parameters.max_studies,
    )
    if found.truncated:
        raise InvalidInput(
            f"more than {parameters.max_studies} studies on node {node.name!r} match: narrow "
            "the filters or raise max_studies"
        )
    uids = [row["StudyInstanceUID"] for row in study_rows(found.studies)]
    missing = [uid for uid in parameters.study_instance_uids if uid not in uids]
    if missing:
        raise InvalidInput(
            f"node {node.name!r} has no such studies (or they do not match the filters): "
            f"{', '.join(missing[:5])}"
        )
    if not uids:
        raise InvalidInput(f"no study on node {node.name!r} matches the filters")
    studies: list[dict[str, Any]] = []
    files: list[Path] = []
    problems: list[str] = []
    for index, uid in enumerate(uids):
        got = get_study(
            node,
            uid,
            ctx.output_dir / "studies" / f"{index + 1:05d}",
            calling_ae_title=ctx.calling_ae_title,
        )
        series = _series_of(got.files)
        studies.append(
            {
                "StudyInstanceUID": uid,
                "instances": len(got.files),
                "completed": got.completed,
                "failed": got.failed,
                "warning": got.warning,
                "refused": got.refused,
                "series": series,
            }
        )
        problems += [f"study {uid}: {problem}" for problem in _problems(got)]
        files += got.files
        ctx.logger.info("study %s: %d instances in %d series", uid, len(got.files), len(series))
        ctx.progress(index + 1, len(uids) + 1)
    if problems and not parameters.allow_failures:
        raise InvalidInput(f"retrieving from node {node.name!r}: {'; '.join(problems[:5])}")
    report = ctx.output_dir / "retrieved.json"
    report.write_text(json.dumps({"node": node.name, "studies": studies}, indent=2))
    ctx.add_artifact(report)
    if files:
        ctx.store_dicom(files)
    all_series = sorted({uid for study in studies for uid in study["series"]})
    if parameters.dataset and all_series:
        ctx.request(ADD_TO_DATASET, dataset=parameters.dataset, series=all_series)
    ctx.logger.info("retrieved %d instances of %d studies", len(files), len(uids))
    ctx.progress(1)


WORKFLOWS = [
    Workflow(
        name="send-dicom",
        version="1.0",
        description="Sends each series, as stored, to a registered DICOM node (C-STORE), with "
        "a report per instance.",
        parameters=SendDicomParameters,
        node_params=("node",),
        max_parallel=4,
        steps=[Step(name="send-dicom", operator=run_send_dicom, timeout=1800, retries=1)],
    ),
    Workflow(
        name="query-pacs",
        version="1.0",
        description="Lists the studies of a registered DICOM node that match the filters "
        "(C-FIND), as studies.json and studies.csv.",
        parameters=QueryPacsParameters,
        node_params=("node",),
        needs_series=False,
        steps=[
            Step(
                name="query-pacs",
                operator=run_query_pacs,
                mode=ModeValues.per_run,
                timeout=600,
                retries=1,
            )
        ],
    ),
    Workflow(
        name="retrieve-from-pacs",
        version="1.0",
        description="Retrieves studies from a registered DICOM node (C-GET) into the run's "
        "project and, optionally, a dataset.",
        parameters=RetrieveFromPacsParameters,
        node_params=("node",),
        needs_series=False,
        steps=[
            Step(
                name="retrieve-from-pacs",
                operator=run_retrieve_from_pacs,
                mode=ModeValues.per_run,
                timeout=3600,
                retries=1,
            )
        ],
    ),
]
