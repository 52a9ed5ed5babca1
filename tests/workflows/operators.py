"""Operators of the test workflows: each execution leaves a file, so tests count executions."""

import os
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from kaapana.testing import ct_segmentation
from kaapana.workflows import TaskContext


class ProbeParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marker_dir: str
    sleep: float = 0.0


def _mark(ctx: TaskContext, what: str = "") -> None:
    name = f"{ctx.step}.{ctx.series_instance_uid or 'run'}.{ctx.attempt}.{os.getpid()}"
    # Written whole under a name the tests ignore, then renamed: a test reads it at once.
    temp = Path(ctx.params["marker_dir"]) / f".{name}"
    temp.write_text(what or str(os.getppid()))
    temp.replace(temp.with_name(name))


def probe(ctx: TaskContext) -> None:
    """Marks its execution, sleeps, writes a deterministic output; fails while a file
    ``fail-<SeriesInstanceUID>`` is in the marker folder."""
    _mark(ctx)
    print(f"probe of {ctx.series_instance_uid} says hello")
    ctx.logger.info("probe logging for %s", ctx.series_instance_uid)
    time.sleep(ctx.params["sleep"])
    if (Path(ctx.params["marker_dir"]) / f"fail-{ctx.series_instance_uid}").exists():
        raise RuntimeError(f"probe refuses {ctx.series_instance_uid}")
    out = ctx.output_dir / "count.txt"
    out.write_text(str(len(list(ctx.input_dir.iterdir()))))
    ctx.add_artifact(out)


def gather(ctx: TaskContext) -> None:
    """Per run: reads what the per-series probe wrote for every series."""
    _mark(ctx)
    total = 0
    for uid, folder in sorted(ctx.input_dirs().items()):
        total += int((folder / "count.txt").read_text())
        ctx.logger.info("series %s counted", uid)
    (ctx.output_dir / "total.txt").write_text(str(total))
    ctx.add_artifact(ctx.output_dir / "total.txt")


def spawn_and_wait(ctx: TaskContext) -> None:
    """Starts a grandchild that would outlive a careless kill, records its pid, waits."""
    _mark(ctx)
    child = subprocess.Popen(["sleep", "300"])
    (Path(ctx.params["marker_dir"]) / "grandchild.pid").write_text(str(child.pid))
    child.wait()


def segment(ctx: TaskContext) -> None:
    """A derived DICOM SEG from the input CT, stored into the archive."""
    from pydicom import dcmread

    sources = [dcmread(path) for path in sorted(ctx.input_dir.iterdir())]
    seg = ct_segmentation(sources)
    target = ctx.output_dir / "seg.dcm"
    seg.save_as(target, enforce_file_format=True)
    ctx.store_dicom([target])


def segment_into_research(ctx: TaskContext) -> None:
    """Like ``segment``, but into the project ``research``, which its workflow does not name."""
    from pydicom import dcmread

    sources = [dcmread(path) for path in sorted(ctx.input_dir.iterdir())]
    target = ctx.output_dir / "seg.dcm"
    ct_segmentation(sources).save_as(target, enforce_file_format=True)
    ctx.store_dicom([target], project="research")


def tag_as_reviewed(ctx: TaskContext) -> None:
    ctx.request("tag-series", add=["reviewed"])


def tag_a_stranger(ctx: TaskContext) -> None:
    ctx.request("tag-series", series=["1.2.3.4.5"], add=["reviewed"])


def ask_the_unknown(ctx: TaskContext) -> None:
    ctx.request("launch-rockets", count=3)


def echo_gate_input(ctx: TaskContext) -> None:
    """Prints and keeps what the step's gate handed this execution."""
    note = (ctx.gate_dir / "notes" / "note.txt").read_text()
    print(f"execution {ctx.attempt}: {note}")
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    (ctx.output_dir / "note.txt").write_text(note)


def describe_own_attempt(ctx: TaskContext) -> None:
    """Prints the mode of its attempt file and whether its settings carry secrets."""
    mode = (ctx.control_dir / "attempt.pickle").stat().st_mode & 0o777
    print(f"attempt file mode {mode:o}")
    if ctx.settings is not None:
        print(f"admin password given: {ctx.settings.admin_password is not None}")
        print(f"database url given: {bool(ctx.settings.resolved_database_url)}")
