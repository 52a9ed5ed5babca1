"""``TaskContext``: everything an operator sees of its task, and its only way to hand back results.

A context is plain data (picklable), so it travels to any Dask worker. The worker side never
opens the database or the archive: ``store_dicom`` and ``add_artifact`` append to a results file
in the attempt folder, and the scheduler side, after the attempt succeeded and was moved into
place, stores the DICOM into the archive and the artifacts into result storage. What this needs
from a scale-out cluster is one shared work folder (setting ``work_dir``), nothing else.

Attempt folder layout (``WORKFLOW_DIR``), the Kaapana processing-container contract::

    <attempt>/batch/<SeriesInstanceUID>/<input step>/   inputs (links to finished folders)
    <attempt>/batch/<SeriesInstanceUID>/<step>/         output of a per-series task
    <attempt>/<step>/                                   output of a per-run task
    <attempt>/.kaapana/                                 results, progress, cancel marker
"""

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from kaapana.config import Settings
from kaapana.errors import InvalidInput
from kaapana.workflows.definitions import INPUT_STEP
from kaapana.workflows.gates import GATE_INPUT

CONTROL_DIR = ".kaapana"
RESULTS_FILE = "results.jsonl"
PROGRESS_FILE = "progress.json"
CANCEL_FILE = "cancel"
BATCH_NAME = "batch"


@dataclass(frozen=True, slots=True)
class SeriesInput:
    """One input series: its UIDs, its series-level DICOM JSON (PS3.18 F.2) and its tags."""

    series_instance_uid: str
    study_instance_uid: str
    modality: str
    number_of_instances: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    """The run's project's tags on the series, as the run's inputs were loaded."""
    datasets: tuple[str, ...] = ()
    """The datasets of the run's project that hold the series."""


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A registered DICOM node as a task sees it: where to open an association to."""

    name: str
    ae_title: str
    host: str
    port: int


@dataclass(frozen=True)
class TaskContext:
    """The view of one task attempt; operators read it and call its methods."""

    run_id: int
    task_id: int
    attempt: int
    workflow: str
    step: str
    project: str
    params: dict[str, Any]
    series: tuple[SeriesInput, ...]
    workflow_dir: Path
    input_step: str
    per_series: bool
    log_path: Path
    shared_dirs: tuple[Path, ...] = ()
    """Folders the input links point into (work and storage); mounted read-only in containers."""
    secrets_dir: Path | None = None
    """The installation's secrets folder (``<data dir>/secrets``), for per-project keys."""
    checkpoint_dir: Path | None = None
    """A folder of this task kept across its attempts (and ``runs retry``), for checkpoints
    that a later attempt resumes from; created on first use, never moved into the results."""
    resolved: dict[str, Any] = field(default_factory=dict)
    """What the platform resolved for parameters when the run was created (see
    ``kaapana.workflows.resolvers``), by parameter name."""
    nodes: Mapping[str, NodeAddress] = field(default_factory=dict)
    """The registered DICOM nodes the run's node parameters name, resolved by the scheduler."""
    calling_ae_title: str = ""
    """The installation's AE title, which the task's own associations call from."""

    def node(self, name: str) -> NodeAddress:
        """The address of a node a node parameter names; workers never read the registry."""
        found = self.nodes.get(name)
        if found is None:
            raise InvalidInput(
                f"DICOM node {name!r} is not registered (any more), or no node parameter of "
                f"workflow {self.workflow!r} names it"
            )
        return found

    references: tuple[SeriesInput, ...] = ()
    """Of a step with ``references``: the series the task's series reference (a SEG's image
    series) that the run's project holds, besides the task's own series."""
    companions: tuple[SeriesInput, ...] = ()
    """Of a step with ``companions``: the run's other input series that reference a series the
    task's series references (the other SEGs of its image series)."""
    settings: Settings | None = None
    """The installation's settings, for tasks of service workflows only (platform code that
    opens the index and storage itself); None for every other task."""

    @property
    def batch_dir(self) -> Path:
        return self.workflow_dir / BATCH_NAME

    @property
    def series_instance_uid(self) -> str | None:
        """The one series of a per-series task (None for a per-run task)."""
        return self.series[0].series_instance_uid if self.per_series else None

    @property
    def input_dir(self) -> Path:
        """Per series: this series' input folder; per run: the batch folder of all series."""
        if self.per_series:
            return self.batch_dir / self.series[0].series_instance_uid / self.input_step
        return self.batch_dir

    def input_dirs(self) -> dict[str, Path]:
        """Each input series' folder of the input step, by Series Instance UID."""
        return {
            s.series_instance_uid: self.batch_dir / s.series_instance_uid / self.input_step
            for s in self.series
        }

    def reference_dirs(self) -> dict[str, Path]:
        """Each referenced series' DICOM folder (``batch/<uid>/get-input-data``), by UID."""
        return {
            s.series_instance_uid: self.batch_dir / s.series_instance_uid / INPUT_STEP
            for s in self.references
        }

    def companion_dirs(self) -> dict[str, Path]:
        """Each companion series' DICOM folder (``batch/<uid>/get-input-data``), by UID."""
        return {
            s.series_instance_uid: self.batch_dir / s.series_instance_uid / INPUT_STEP
            for s in self.companions
        }

    @property
    def output_dir(self) -> Path:
        if self.per_series:
            return self.batch_dir / self.series[0].series_instance_uid / self.step
        return self.workflow_dir / self.step

    @property
    def gate_dir(self) -> Path:
        """The files the step's gate handed this execution (``kaapana.workflows.gates``)."""
        return self.workflow_dir / GATE_INPUT

    @property
    def control_dir(self) -> Path:
        return self.workflow_dir / CONTROL_DIR

    @cached_property
    def logger(self) -> logging.Logger:
        """Writes into the task's log, beside stdout and stderr."""
        logger = logging.getLogger(f"kaapana.task.{self.run_id}.{self.step}.{self.task_id}")
        if not logger.handlers:
            handler = logging.StreamHandler()  # stderr, which is the task log
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        return logger

    def progress(self, done: float, total: float = 1.0) -> None:
        """Report how far the task is (shown in run details and the CLI)."""
        if total <= 0:
            raise InvalidInput(f"'total' must be > 0, got {total}")
        fraction = max(0.0, min(1.0, done / total))
        temp = self.control_dir / f"{PROGRESS_FILE}.tmp"
        temp.write_text(json.dumps({"progress": fraction}))
        temp.replace(self.control_dir / PROGRESS_FILE)

    def store_dicom(self, paths: list[Path] | list[str], *, project: str | None = None) -> None:
        """Store these Part 10 files (inside the output folder) into the archive, in the run's
        project (or ``project``, which the run was authorised to write when it was created),
        linked to the run and the task's series, once the task succeeded."""
        for path in paths:
            self._record("dicom", self._relative(Path(path)), project=project)

    def add_artifact(self, path: Path | str) -> None:
        """Keep this file (inside the output folder) in result storage as an artifact."""
        self._record("artifact", self._relative(Path(path)))

    def request(self, action: str, **payload: Any) -> None:
        """Ask the platform to carry out ``action`` (e.g. ``tag-series``) once the task
        succeeded; ``payload`` must be JSON. See ``kaapana.workflows.actions``."""
        try:
            encoded = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"the payload of action {action!r} is not JSON: {exc}") from exc
        self._write_record({"kind": "action", "action": action, "payload": encoded})

    def _relative(self, path: Path) -> str:
        resolved = (path if path.is_absolute() else self.output_dir / path).resolve()
        try:
            relative = resolved.relative_to(self.output_dir.resolve())
        except ValueError as exc:
            raise InvalidInput(
                f"results must be inside the output folder {self.output_dir}, got {path}"
            ) from exc
        if not resolved.is_file():
            raise InvalidInput(f"result {path} is not a file")
        return relative.as_posix()

    def _record(self, kind: str, relative: str, *, project: str | None = None) -> None:
        record = {"kind": kind, "path": relative}
        if project is not None:
            record["project"] = project
        self._write_record(record)

    def _write_record(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with (self.control_dir / RESULTS_FILE).open("a") as results:
            results.write(line)
            results.flush()
            os.fsync(results.fileno())


def read_results(attempt_dir: Path) -> list[dict[str, Any]]:
    path = attempt_dir / CONTROL_DIR / RESULTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_progress(attempt_dir: Path) -> float | None:
    try:
        value = json.loads((attempt_dir / CONTROL_DIR / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return float(value.get("progress", 0.0))


__all__ = [
    "BATCH_NAME",
    "CANCEL_FILE",
    "CONTROL_DIR",
    "NodeAddress",
    "SeriesInput",
    "TaskContext",
    "read_progress",
    "read_results",
]
