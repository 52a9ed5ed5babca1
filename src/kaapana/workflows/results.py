"""What a succeeded attempt leaves: its folders moved into place, DICOM into the archive,
artifacts into result storage. Runs on the scheduler side, outside any database transaction
(the archive's index writer needs the write lock on SQLite); the rows are written after."""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaapana.archive import Archive, StoreTarget
from kaapana.archive.metadata import inspect
from kaapana.errors import Conflict, InvalidInput
from kaapana.storage import ObjectStore
from kaapana.workflows.actions import ActionRequest, Actions
from kaapana.workflows.context import TaskContext, read_results
from kaapana.workflows.definitions import Step
from kaapana.workflows.workspace import Workspace

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    name: str
    storage_key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class StoredDicom:
    sop_instance_uid: str
    sha256: str
    source_series_instance_uid: str


@dataclass(slots=True)
class Collected:
    artifacts: list[StoredArtifact] = field(default_factory=list)
    dicom: list[StoredDicom] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    """What each platform action did, one line each, for the task log."""


def artifact_key(run_id: int, name: str) -> str:
    """A safe storage key for an artifact name (a relative path in the run's folder)."""
    parts = [_UNSAFE.sub("_", part)[:128] or "_" for part in name.split("/")]
    return "/".join(["runs", str(run_id), *parts])


def put_artifact(results: ObjectStore, run_id: int, name: str, data: bytes) -> StoredArtifact:
    key = artifact_key(run_id, name)
    results.put(key, data)
    return StoredArtifact(name, key, len(data), hashlib.sha256(data).hexdigest())


def collect(
    *,
    ctx: TaskContext,
    step: Step,
    workspace: Workspace,
    archive: Archive,
    results: ObjectStore,
    project_pk: int,
    actions: Actions,
    other_projects: frozenset[str] = frozenset(),
) -> Collected:
    records = read_results(ctx.workflow_dir)
    requests = [r for r in records if r["kind"] == "action"]
    actions.check(r["action"] for r in requests)
    by_project: dict[str | None, list[str]] = {}
    for record in records:
        if record["kind"] == "dicom":
            by_project.setdefault(record.get("project"), []).append(record["path"])
    refused = sorted(p for p in by_project if p is not None and p not in other_projects)
    if refused:  # checked before anything is kept, so the attempt leaves nothing behind
        raise InvalidInput(
            f"the task stores DICOM into {refused}, which its workflow's project parameters do "
            "not name; a run stores into its own project and those only"
        )
    relative_out = ctx.output_dir.relative_to(ctx.workflow_dir)
    workspace.promote(ctx.run_id, ctx.workflow_dir, ctx.step)
    final_out = workspace.run_dir(ctx.run_id) / relative_out
    collected = Collected()
    artifacts = [r["path"] for r in records if r["kind"] == "artifact"]
    for pattern in step.artifacts:
        artifacts += sorted(
            p.relative_to(final_out).as_posix() for p in final_out.glob(pattern) if p.is_file()
        )
    for relative in dict.fromkeys(artifacts):
        data = (final_out / relative).read_bytes()
        name = f"{relative_out.as_posix()}/{relative}"
        collected.artifacts.append(put_artifact(results, ctx.run_id, name, data))
    for project, paths in by_project.items():
        target_pk = project_pk if project is None else archive.projects.get(project).id
        collected.dicom += _store_dicom(ctx, archive, [final_out / p for p in paths], target_pk)
    for record in requests:
        collected.actions.append(actions.apply(_action_request(ctx, project_pk, record)))
    return collected


def _action_request(ctx: TaskContext, project_pk: int, record: dict[str, Any]) -> ActionRequest:
    return ActionRequest(
        action=record["action"],
        run_id=ctx.run_id,
        project_pk=project_pk,
        project=ctx.project,
        series_instance_uid=ctx.series_instance_uid,
        input_series=tuple(s.series_instance_uid for s in ctx.series),
        payload=record.get("payload") or {},
    )


def _store_dicom(
    ctx: TaskContext, archive: Archive, paths: list[Path], project_pk: int
) -> list[StoredDicom]:
    objects = [inspect(path.read_bytes(), source=path.name) for path in paths]
    outcomes = archive.store_all(objects, StoreTarget(project_pk=project_pk))
    refused = [o.detail for o in outcomes if isinstance(o, Conflict)]
    if refused:
        raise InvalidInput(f"the archive refused results: {'; '.join(refused)}")
    source = ctx.series_instance_uid or ""
    return [StoredDicom(o.sop_instance_uid, o.sha256, source) for o in objects]


__all__ = ["Collected", "StoredArtifact", "StoredDicom", "artifact_key", "collect", "put_artifact"]
