"""federated-radiomics: first-order radiomics features per segment label, summarised at each
site and pooled.

For each segment of each DICOM SEG among the run's series, the features of the voxels it
covers in the CT it was derived from (matched frame by frame through the SEG's source image
references): volume (mL), mean, standard deviation, minimum and maximum intensity (HU). Each
site keeps per label and feature only count, sums, extremes and a fixed-bin histogram (the
quantile sketch: quartiles are read off it), so the pooled summaries equal the summaries of
the union of the sites' cases.
"""

import json
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import Dataset

from kaapana.federation.aggregation import FederatedPlan, Files
from kaapana.federation.statistics import finish_summary, merge_summary, value_summary
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow

RADIOMICS_NAME = "radiomics.json"
BIN_WIDTHS = {"volume_ml": 50.0, "mean_hu": 25.0, "sd_hu": 10.0, "min_hu": 50.0, "max_hu": 50.0}
"""Histogram bin width per feature, in its unit."""
QUARTILES = (0.25, 0.5, 0.75)

Case = tuple[str, dict[str, float]]
"""One segment of one SEG: its label and its features."""


def segment_features(seg: Dataset, sources: Mapping[str, Dataset]) -> list[Case]:
    """The features of each segment of ``seg``; ``sources`` are its CT images by SOP
    Instance UID (frames whose source is missing are skipped)."""
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    spacing = [float(v) for v in measures.PixelSpacing]
    thickness = float(
        getattr(measures, "SpacingBetweenSlices", None) or getattr(measures, "SliceThickness", 1.0)
    )
    voxel_ml = spacing[0] * spacing[1] * thickness / 1000.0
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    values: dict[int, list[np.ndarray]] = {}
    for index, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        source_uid = (
            group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        )
        source = sources.get(source_uid)
        if source is None:
            continue
        hu = source.pixel_array * float(source.RescaleSlope) + float(source.RescaleIntercept)
        values.setdefault(number, []).append(hu[frames[index] > 0])
    cases = []
    for number in sorted(values):
        voxels = np.concatenate(values[number])
        if voxels.size == 0:
            continue
        cases.append(
            (
                labels[number],
                {
                    "volume_ml": round(voxels.size * voxel_ml, 6),
                    "mean_hu": round(float(voxels.mean()), 6),
                    "sd_hu": round(float(voxels.std()), 6),
                    "min_hu": float(voxels.min()),
                    "max_hu": float(voxels.max()),
                },
            )
        )
    return cases


def site_features(files: Iterable[Path]) -> list[Case]:
    """The cases of every SEG among ``files``, against the CT images among them."""
    images: dict[str, Dataset] = {}
    segmentations: list[Dataset] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            ds = pydicom.dcmread(path)
            if ds.Modality == "SEG":
                segmentations.append(ds)
            elif "PixelData" in ds and "RescaleIntercept" in ds:
                images[ds.SOPInstanceUID] = ds
        return [case for seg in segmentations for case in segment_features(seg, images)]


def summarize(cases: Iterable[Case]) -> dict[str, Any]:
    by_label: dict[str, dict[str, list[float]]] = {}
    for label, features in cases:
        for name, value in features.items():
            by_label.setdefault(label, {}).setdefault(name, []).append(value)
    summary = {
        label: {name: value_summary(v, BIN_WIDTHS[name]) for name, v in features.items()}
        for label, features in by_label.items()
    }
    return finish({"labels": summary})


def pool_radiomics(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    pooled: dict[str, dict[str, dict[str, Any]]] = {}
    for part in parts:
        for label, features in part["labels"].items():
            for name, summary in features.items():
                known = pooled.setdefault(label, {}).get(name)
                if known is None:
                    pooled[label][name] = {
                        k: summary[k]
                        for k in ("count", "sum", "sum_of_squares", "min", "max", "histogram")
                    }
                else:
                    merge_summary(known, summary)
    return finish({"labels": pooled})


def _quantile(histogram: Mapping[str, int], width: float, count: int, q: float) -> float:
    """Read off the fixed-bin histogram, linear within the bin."""
    target = q * count
    seen = 0
    for lower, number in sorted(((float(k), v) for k, v in histogram.items())):
        if seen + number >= target:
            return round(lower + width * (target - seen) / number, 6)
        seen += number
    return round(max(float(k) for k in histogram) + width, 6)


def finish(document: dict[str, Any]) -> dict[str, Any]:
    labels = {}
    for label in sorted(document["labels"]):
        features = {}
        for name in sorted(document["labels"][label]):
            summary = finish_summary(document["labels"][label][name])
            summary["quartiles"] = [
                _quantile(summary["histogram"], BIN_WIDTHS[name], summary["count"], q)
                for q in QUARTILES
            ]
            features[name] = summary
        labels[label] = features
    return {"labels": labels}


def run_site_radiomics(ctx: TaskContext) -> None:
    """All series of the run: the radiomics summaries into ``radiomics.json``."""
    files = [
        path
        for folder in ctx.input_dirs().values()
        for path in sorted(folder.iterdir())
        if path.is_file()
    ]
    cases = site_features(files)
    target = ctx.output_dir / RADIOMICS_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summarize(cases), sort_keys=True))
    ctx.add_artifact(target)
    ctx.logger.info("radiomics of %d segments", len(cases))
    ctx.progress(1)


RADIOMICS_WORKFLOW = Workflow(
    name="federated-radiomics",
    version="1.0",
    description="First-order radiomics features (volume, HU mean, sd, min, max) per SEG segment "
    "label of the run's series, summarised; the local part of federated radiomics.",
    federated_outputs=(RADIOMICS_NAME,),
    steps=[
        Step(name="radiomics", operator=run_site_radiomics, mode=ModeValues.per_run, timeout=3600)
    ],
)


class RadiomicsPooling:
    """Aggregator of federated-radiomics: pooled summaries, per site and in total."""

    def initial(self, params: Mapping[str, Any]) -> Files:
        return {}

    def aggregate(
        self,
        *,
        round: int,
        params: Mapping[str, Any],
        current: Files,
        outputs: Mapping[str, Files],
    ) -> Files:
        per_site = {
            site: json.loads(files[RADIOMICS_NAME]) for site, files in sorted(outputs.items())
        }
        document = {"round": round, "pooled": pool_radiomics(per_site.values()), "sites": per_site}
        return {RADIOMICS_NAME: json.dumps(document, sort_keys=True).encode()}

    def broadcast(self, current: Files) -> Files:
        return {}

    def summary(self, current: Files) -> dict[str, Any]:
        if RADIOMICS_NAME not in current:
            return {}
        result: dict[str, Any] = json.loads(current[RADIOMICS_NAME])
        return result


RADIOMICS_PLAN = FederatedPlan(
    name="federated-radiomics",
    workflow=RADIOMICS_WORKFLOW.name,
    aggregator=RadiomicsPooling(),
    description="First-order radiomics features per segment label, summarised at every site "
    "and pooled centrally.",
)

__all__ = [
    "RADIOMICS_NAME",
    "RADIOMICS_PLAN",
    "RADIOMICS_WORKFLOW",
    "RadiomicsPooling",
    "pool_radiomics",
    "segment_features",
    "site_features",
    "summarize",
]
