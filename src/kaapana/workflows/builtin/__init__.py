"""Workflow adapters of the built-in operators (``kaapana.operators``), one module each.

Each module imports its operator core at the top, so a module whose libraries (the
``workflows`` extra) are missing fails to load on its own and is listed as a load error, while
the core installation and the other built-ins start.
"""

from pathlib import Path

from pydicom import Dataset

from kaapana.errors import InvalidInput
from kaapana.operators.series import read_series
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import INPUT_STEP


def series_files(ctx: TaskContext) -> list[Path]:
    """This series' DICOM files (the input links), in name order."""
    return sorted(path for path in ctx.input_dir.iterdir() if path.is_file())


def series_datasets(ctx: TaskContext) -> list[Dataset]:
    return read_series(series_files(ctx))


def series_seg(ctx: TaskContext) -> Dataset:
    """The one SEG object of this SEG series."""
    series = ctx.series[0]
    if series.modality != "SEG":
        raise InvalidInput(f"series {series.series_instance_uid} is {series.modality}, not a SEG")
    datasets = series_datasets(ctx)
    if len(datasets) != 1:
        raise InvalidInput(
            f"SEG series {series.series_instance_uid} has {len(datasets)} instances; one SEG "
            "object per series is supported"
        )
    return datasets[0]


def referenced_seg_image(ctx: TaskContext, seg: Dataset) -> list[Path]:
    """The files of the image series ``seg`` references, among the task's referenced series
    (a step with ``references``) or its input series; a SEG without its reference image is
    refused by name."""
    wanted = [str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])]
    known = {s.series_instance_uid for s in (*ctx.series, *ctx.references)}
    for uid in wanted:
        if uid in known:
            folder = ctx.batch_dir / uid / INPUT_STEP
            return sorted(path for path in folder.iterdir() if path.is_file())
    raise InvalidInput(
        f"SEG {seg.SeriesInstanceUID} references image series {wanted or 'none'}, which the "
        "project does not hold: a SEG needs its reference image"
    )


def save_part10(ds: Dataset, folder: Path) -> Path:
    """Write ``ds`` as a Part 10 file named by its SOP Instance UID."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(target, enforce_file_format=True)
    return target


__all__ = [
    "referenced_seg_image",
    "save_part10",
    "series_datasets",
    "series_files",
    "series_seg",
]
