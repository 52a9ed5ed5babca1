"""The provenance manifest of a run, and comparing two of them.

Written when a run ends and kept as its artifact ``manifest.json``: what ran (workflow name,
version, definition hash, parameters, package versions), on what (every input SOP Instance UID
with the sha256 the index recorded at ingest), what came out (artifacts and stored DICOM with
sha256), when and where (task timings, worker hosts).
"""

import json
import platform as host_platform
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaapana.db.models import Artifact, Instance, Project, Run, RunInput, RunOutput, Series, Task

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_PACKAGES = ("kaapana", "pydicom", "highdicom", "numpy", "dask", "distributed", "pydantic")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def package_versions() -> dict[str, str]:
    found = {"python": host_platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def build_manifest(session: Session, run: Run) -> dict[str, Any]:
    project = session.get(Project, run.project_pk)
    inputs: dict[str, list[dict[str, str]]] = {}
    rows = session.execute(
        select(Series.series_instance_uid, Instance.sop_instance_uid, Instance.sha256)
        .join(RunInput, RunInput.series_pk == Series.id)
        .join(Instance, Instance.series_pk == Series.id)
        .where(RunInput.run_pk == run.id)
        .order_by(RunInput.position, Instance.sop_instance_uid)
    )
    for series_uid, sop_uid, sha256 in rows:
        inputs.setdefault(series_uid, []).append({"sop_instance_uid": sop_uid, "sha256": sha256})
    tasks = session.scalars(select(Task).where(Task.run_pk == run.id).order_by(Task.id)).all()
    artifacts = session.scalars(
        select(Artifact)
        .where(Artifact.run_pk == run.id, Artifact.name != MANIFEST_NAME)
        .order_by(Artifact.name)
    ).all()
    dicom = session.scalars(
        select(RunOutput).where(RunOutput.run_pk == run.id).order_by(RunOutput.sop_instance_uid)
    ).all()
    return {
        "manifest_version": MANIFEST_VERSION,
        "run_id": run.id,
        "rerun_of": run.rerun_of,
        "project": project.name if project else None,
        "workflow": run.workflow,
        "version": run.version,
        "definition_hash": run.definition_hash,
        "parameters": run.params,
        "state": run.state,
        "packages": package_versions(),
        "inputs": [
            {"series_instance_uid": uid, "instances": instances}
            for uid, instances in inputs.items()
        ],
        "outputs": {
            "artifacts": [{"name": a.name, "sha256": a.sha256, "size": a.size} for a in artifacts],
            "dicom": [
                {
                    "sop_instance_uid": d.sop_instance_uid,
                    "sha256": d.sha256,
                    "source_series_instance_uid": d.source_series_instance_uid,
                }
                for d in dicom
            ],
        },
        "timings": {
            "created": _iso(run.created_at),
            "started": _iso(run.started_at),
            "finished": _iso(run.finished_at),
        },
        "tasks": [
            {
                "step": t.step,
                "series_instance_uid": t.series_instance_uid or None,
                "state": t.state,
                "attempts": t.attempts,
                "worker": t.worker or None,
                "started": _iso(t.started_at),
                "finished": _iso(t.finished_at),
            }
            for t in tasks
        ],
        "workers": sorted({t.worker.rsplit(":", 1)[0] for t in tasks if t.worker}),
    }


def encode(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


def diff_manifests(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two runs: definition, parameters, inputs and outputs (not timings)."""
    differences: list[dict[str, Any]] = []

    def note(what: str, left: Any, right: Any) -> None:
        if left != right:
            differences.append({"field": what, "a": left, "b": right})

    for key in ("workflow", "version", "definition_hash"):
        note(key, a.get(key), b.get(key))
    params_a, params_b = a.get("parameters", {}), b.get("parameters", {})
    for key in sorted(set(params_a) | set(params_b)):
        note(f"parameters.{key}", params_a.get(key), params_b.get(key))
    for key in sorted(set(a.get("packages", {})) | set(b.get("packages", {}))):
        note(f"packages.{key}", a["packages"].get(key), b["packages"].get(key))

    def instances(manifest: dict[str, Any]) -> dict[str, str]:
        return {
            i["sop_instance_uid"]: i["sha256"]
            for series in manifest.get("inputs", [])
            for i in series["instances"]
        }

    _compare_sets(note, "inputs", instances(a), instances(b))
    artifacts_a = {x["name"]: x["sha256"] for x in a["outputs"]["artifacts"]}
    artifacts_b = {x["name"]: x["sha256"] for x in b["outputs"]["artifacts"]}
    _compare_sets(note, "outputs.artifacts", artifacts_a, artifacts_b)
    dicom_a = {x["sop_instance_uid"]: x["sha256"] for x in a["outputs"]["dicom"]}
    dicom_b = {x["sop_instance_uid"]: x["sha256"] for x in b["outputs"]["dicom"]}
    note("outputs.dicom.count", len(dicom_a), len(dicom_b))
    note(
        "outputs.dicom.sha256",
        sorted(dicom_a.values()),
        sorted(dicom_b.values()),
    )
    return differences


def _compare_sets(note: Any, what: str, a: dict[str, str], b: dict[str, str]) -> None:
    for key in sorted(set(a) | set(b)):
        note(f"{what}[{key}]", a.get(key), b.get(key))


__all__ = ["MANIFEST_NAME", "build_manifest", "diff_manifests", "encode", "package_versions"]
