"""federated-statistics: cohort statistics of every site, pooled without row-level data.

Each site computes counts and histograms of its exposed dataset (modality, series per patient,
segmented organ volumes from DICOM SEG) into ``stats.json``; the orchestrator adds them up.
Every figure is a sum, a minimum, a maximum or a fixed-bin histogram, so pooling is exact: the
pooled statistics equal the statistics computed on the union of the sites' data (patients of
different sites count as different patients, which a split by patient guarantees).
"""

import json
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import Dataset

from kaapana.federation.aggregation import FederatedPlan, SummaryPooling
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow

STATS_NAME = "stats.json"
VOLUME_BIN_ML = 50.0
"""Width of the organ-volume histogram bins, in millilitres (bins start at multiples of it)."""


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """What the statistics need of one series, and nothing more leaves the function."""

    patient_key: str
    study_instance_uid: str
    modality: str
    instances: int
    volumes_ml: tuple[tuple[str, float], ...] = ()


def segment_volumes_ml(seg: Dataset) -> list[tuple[str, float]]:
    """(label, volume in mL) per segment of a SEG, from its frames and pixel measures."""
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    spacing = [float(v) for v in measures.PixelSpacing]
    thickness = float(
        getattr(measures, "SpacingBetweenSlices", None) or getattr(measures, "SliceThickness", 1.0)
    )
    voxel_ml = spacing[0] * spacing[1] * thickness / 1000.0
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    voxels: Counter[int] = Counter()
    for index, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        voxels[number] += int(np.count_nonzero(frames[index]))
    return [(labels[n], round(voxels[n] * voxel_ml, 6)) for n in sorted(labels) if voxels[n]]


def series_record(files: list[Path], modality: str, study_instance_uid: str) -> SeriesRecord:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = pydicom.dcmread(files[0], stop_before_pixels=modality != "SEG")
        volumes: list[tuple[str, float]] = []
        if modality == "SEG":
            for path in files:
                volumes += segment_volumes_ml(pydicom.dcmread(path))
    patient = f"{first.get('PatientID', '')}^{first.get('IssuerOfPatientID', '')}"
    return SeriesRecord(
        patient_key=patient,
        study_instance_uid=study_instance_uid,
        modality=modality,
        instances=len(files),
        volumes_ml=tuple(volumes),
    )


def value_summary(values: list[float], bin_width: float) -> dict[str, Any]:
    """Count, sums, extremes and a histogram of bins starting at multiples of ``bin_width``:
    everything that adds up exactly across sites."""
    bins = Counter(f"{math.floor(v / bin_width) * bin_width:g}" for v in values)
    return {
        "count": len(values),
        "sum": round(sum(values), 6),
        "sum_of_squares": round(sum(v * v for v in values), 6),
        "min": min(values),
        "max": max(values),
        "histogram": dict(bins),
    }


def merge_summary(known: dict[str, Any], summary: Mapping[str, Any]) -> None:
    """Add ``summary`` (of other values) into ``known``."""
    known["count"] += summary["count"]
    known["sum"] = round(known["sum"] + summary["sum"], 6)
    known["sum_of_squares"] = round(known["sum_of_squares"] + summary["sum_of_squares"], 6)
    known["min"] = min(known["min"], summary["min"])
    known["max"] = max(known["max"], summary["max"])
    known["histogram"] = _add_counts(known["histogram"], summary["histogram"])


def finish_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The mean and (sample) standard deviation from the sums; bins in order."""
    count = summary["count"]
    mean = summary["sum"] / count
    variance = max(summary["sum_of_squares"] / count - mean * mean, 0.0)
    summary["mean"] = round(mean, 6)
    summary["sd"] = round(math.sqrt(variance * count / (count - 1)), 6) if count > 1 else 0.0
    summary["histogram"] = dict(
        sorted(summary["histogram"].items(), key=lambda item: float(item[0]))
    )
    return summary


def site_statistics(records: Iterable[SeriesRecord]) -> dict[str, Any]:
    """The statistics of one set of series; the raw records never leave this function."""
    records = list(records)
    series_per_patient = Counter(r.patient_key for r in records)
    volumes: dict[str, list[float]] = {}
    for record in records:
        for label, volume in record.volumes_ml:
            volumes.setdefault(label, []).append(volume)
    return finish(
        {
            "patients": len(series_per_patient),
            "studies": len({r.study_instance_uid for r in records}),
            "series": len(records),
            "instances": sum(r.instances for r in records),
            "modality": dict(Counter(r.modality for r in records)),
            "series_per_patient": {
                str(k): v for k, v in Counter(series_per_patient.values()).items()
            },
            "organ_volume_ml": {
                label: value_summary(v, VOLUME_BIN_ML) for label, v in volumes.items()
            },
        }
    )


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    total = Counter(a)
    total.update(b)
    return dict(total)


def pool(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The statistics of the union, from each part's statistics."""
    pooled: dict[str, Any] = {
        "patients": 0,
        "studies": 0,
        "series": 0,
        "instances": 0,
        "modality": {},
        "series_per_patient": {},
        "organ_volume_ml": {},
    }
    for part in parts:
        for key in ("patients", "studies", "series", "instances"):
            pooled[key] += int(part[key])
        for key in ("modality", "series_per_patient"):
            pooled[key] = _add_counts(pooled[key], part[key])
        for label, summary in part["organ_volume_ml"].items():
            known = pooled["organ_volume_ml"].get(label)
            if known is None:
                pooled["organ_volume_ml"][label] = dict(summary)
                continue
            merge_summary(known, summary)
    return finish(pooled)


def finish(statistics: dict[str, Any]) -> dict[str, Any]:
    """Sorted keys, and the mean and standard deviation derived from the sums."""
    statistics["modality"] = dict(sorted(statistics["modality"].items()))
    statistics["series_per_patient"] = dict(
        sorted(statistics["series_per_patient"].items(), key=lambda item: int(item[0]))
    )
    statistics["organ_volume_ml"] = {
        label: finish_summary(statistics["organ_volume_ml"][label])
        for label in sorted(statistics["organ_volume_ml"])
    }
    return statistics


def run_site_statistics(ctx: TaskContext) -> None:
    """All series of the run: their statistics into ``stats.json``."""
    folders = ctx.input_dirs()
    records = []
    for series in ctx.series:
        files = sorted(p for p in folders[series.series_instance_uid].iterdir() if p.is_file())
        if files:
            records.append(series_record(files, series.modality, series.study_instance_uid))
    target = ctx.output_dir / STATS_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(site_statistics(records), sort_keys=True))
    ctx.add_artifact(target)
    ctx.logger.info("statistics of %d series", len(records))
    ctx.progress(1)


STATISTICS_WORKFLOW = Workflow(
    name="federated-statistics",
    version="1.0",
    description="Counts and histograms of the run's series (modality, series per patient, "
    "segmented organ volumes from SEG), the local part of federated statistics.",
    federated_outputs=(STATS_NAME,),
    steps=[
        Step(
            name="statistics",
            operator=run_site_statistics,
            mode=ModeValues.per_run,
            timeout=3600,
        )
    ],
)


STATISTICS_PLAN = FederatedPlan(
    name="federated-statistics",
    workflow=STATISTICS_WORKFLOW.name,
    aggregator=SummaryPooling(STATS_NAME, pool),
    description="Counts and histograms of every site's dataset, pooled centrally.",
)

__all__ = [
    "STATISTICS_PLAN",
    "STATISTICS_WORKFLOW",
    "STATS_NAME",
    "SeriesRecord",
    "finish_summary",
    "merge_summary",
    "pool",
    "segment_volumes_ml",
    "series_record",
    "site_statistics",
    "value_summary",
]
