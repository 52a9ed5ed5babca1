"""Workflow adapters of the built-in operators (``kaapana.operators``), one module each.

Each module imports its operator core at the top, so a module whose libraries (the
``workflows`` extra) are missing fails to load on its own and is listed as a load error, while
the core installation and the other built-ins start.
"""

from pathlib import Path

from pydicom import Dataset

from kaapana.operators.series import read_series
from kaapana.workflows.context import TaskContext


def series_files(ctx: TaskContext) -> list[Path]:
    """This series' DICOM files (the input links), in name order."""
    return sorted(path for path in ctx.input_dir.iterdir() if path.is_file())


def series_datasets(ctx: TaskContext) -> list[Dataset]:
    return read_series(series_files(ctx))


def save_part10(ds: Dataset, folder: Path) -> Path:
    """Write ``ds`` as a Part 10 file named by its SOP Instance UID."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(target, enforce_file_format=True)
    return target


__all__ = ["save_part10", "series_datasets", "series_files"]
