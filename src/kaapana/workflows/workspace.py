"""The run's folders on the scheduler side: inputs, attempt folders, moving results into place.

Final layout (Kaapana's): ``<work>/<run>/batch/<SeriesInstanceUID>/<step>/`` for per-series
steps and ``<work>/<run>/<step>/`` for per-run steps; the series' DICOM files appear as symlinks
in ``batch/<SeriesInstanceUID>/get-input-data/`` (no copies). Each attempt works in
``<work>/<run>/attempts/<task>.<attempt>/``, where its inputs are links to finished folders; only a
succeeded attempt's output folders are renamed into the final layout, so neither a retry nor a
command that writes elsewhere in its attempt folder can spoil a finished result.
"""

import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from kaapana.storage import ObjectStore
from kaapana.workflows.context import BATCH_NAME, CANCEL_FILE, CONTROL_DIR
from kaapana.workflows.definitions import INPUT_STEP


class Workspace:
    def __init__(self, work_dir: Path) -> None:
        self.root = work_dir

    def run_dir(self, run_id: int) -> Path:
        return self.root / str(run_id)

    def attempt_dir(self, run_id: int, task_id: int, attempt: int) -> Path:
        return self.run_dir(run_id) / "attempts" / f"{task_id}.{attempt}"

    def log_path(self, run_id: int, task_id: int, attempt: int) -> Path:
        return self.run_dir(run_id) / "logs" / f"{task_id}.{attempt}.log"

    def checkpoint_dir(self, run_id: int, task_id: int) -> Path:
        """Kept across the task's attempts: a retry resumes from what an earlier one saved."""
        return self.run_dir(run_id) / "checkpoints" / str(task_id)

    def link_inputs(
        self,
        run_id: int,
        series_instance_uid: str,
        instances: Iterable[tuple[str, str]],
        store: ObjectStore,
    ) -> None:
        """``get-input-data`` of one series: a link per stored file (a copy only where the
        store has no local path), built aside and renamed so it is complete or absent."""
        target = self.run_dir(run_id) / BATCH_NAME / series_instance_uid / INPUT_STEP
        if target.exists():
            return
        building = target.with_name(f".{INPUT_STEP}.{uuid.uuid4().hex}")
        building.mkdir(parents=True)
        for sop_instance_uid, storage_key in instances:
            link = building / f"{sop_instance_uid}.dcm"
            local = store.local_path(storage_key)
            if local is not None:
                link.symlink_to(local)
            else:
                link.write_bytes(store.get(storage_key))
        try:
            building.rename(target)
        except OSError:
            shutil.rmtree(building)  # another attempt built it meanwhile

    def prepare_attempt(
        self,
        *,
        run_id: int,
        task_id: int,
        attempt: int,
        series_instance_uids: Sequence[str],
        upstream: Sequence[str],
    ) -> Path:
        """An empty attempt folder whose ``batch`` links to every input folder the task reads."""
        attempt_dir = self.attempt_dir(run_id, task_id, attempt)
        if attempt_dir.exists():
            shutil.rmtree(attempt_dir)
        (attempt_dir / CONTROL_DIR).mkdir(parents=True)
        run_dir = self.run_dir(run_id)
        for uid in series_instance_uids:
            series_dir = attempt_dir / BATCH_NAME / uid
            series_dir.mkdir(parents=True)
            for name in (INPUT_STEP, *upstream):
                source = run_dir / BATCH_NAME / uid / name
                if source.exists():
                    (series_dir / name).symlink_to(source, target_is_directory=True)
        for name in upstream:
            source = run_dir / name
            if source.exists():
                (attempt_dir / name).symlink_to(source, target_is_directory=True)
        return attempt_dir

    def promote(self, run_id: int, attempt_dir: Path, step: str) -> list[Path]:
        """Rename the attempt's output folders of ``step`` into the run's layout; returns them."""
        run_dir = self.run_dir(run_id)
        moved = []
        candidates = [attempt_dir / step]
        batch = attempt_dir / BATCH_NAME
        if batch.is_dir():
            candidates += [series / step for series in sorted(batch.iterdir())]
        for source in candidates:
            if source.is_symlink() or not source.is_dir():
                continue
            target = run_dir / source.relative_to(attempt_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # left by an attempt whose success was never recorded
                shutil.rmtree(target)
            os.replace(source, target)
            moved.append(target)
        return moved

    def cancel(self, run_id: int, task_id: int, attempt: int) -> None:
        """Ask the worker running this attempt to kill it (works across hosts on a shared path)."""
        control = self.attempt_dir(run_id, task_id, attempt) / CONTROL_DIR
        if control.is_dir():
            (control / CANCEL_FILE).touch()

    def discard_attempts(self, run_id: int) -> None:
        """Remove a finished run's attempt folders (moved aside at once, deleted in the
        background, so a retry can start new attempts meanwhile)."""
        attempts = self.run_dir(run_id) / "attempts"
        if not attempts.is_dir():
            return
        trash = self.run_dir(run_id) / f".attempts-{uuid.uuid4().hex}"
        attempts.rename(trash)
        threading.Thread(
            target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True
        ).start()


__all__ = ["Workspace"]
