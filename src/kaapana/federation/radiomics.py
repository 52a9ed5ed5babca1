"""federated-radiomics: PyRadiomics features per segment label, summarised at each site and
pooled.

Each site computes, for each segment of each DICOM SEG among the run's series, the radiomics
operator's PyRadiomics features over the image series the SEG references (the local workflow,
``kaapana.workflows.builtin.federated_radiomics``), and keeps of the features in
``BIN_WIDTHS`` per label and feature only count, sums, extremes and a fixed-bin histogram (the
quantile sketch: quartiles are read off it), so the pooled summaries equal the summaries of the
union of the sites' cases. This module holds no PyRadiomics: the orchestrator pools without it.
"""

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kaapana.federation.aggregation import FederatedPlan, SummaryPooling
from kaapana.federation.statistics import finish_summary, merge_summary, value_summary

if TYPE_CHECKING:
    from kaapana.operators.radiomics import SeriesFeatures

RADIOMICS_NAME = "radiomics.json"
WORKFLOW_NAME = "federated-radiomics"
BIN_WIDTHS = {
    "original_shape_VoxelVolume": 50_000.0,
    "original_shape_Sphericity": 0.05,
    "original_firstorder_Mean": 25.0,
    "original_firstorder_Median": 25.0,
    "original_firstorder_Minimum": 50.0,
    "original_firstorder_Maximum": 50.0,
    "original_firstorder_Variance": 250.0,
}
"""The PyRadiomics features summarised, with their histogram bin width in their unit (mm³ for
the volume: 50 mL, HU for intensities, HU² for the variance)."""
QUARTILES = (0.25, 0.5, 0.75)

Case = tuple[str, dict[str, float]]
"""One segment of one SEG: its label and its features."""


def cases_of(result: "SeriesFeatures") -> list[Case]:
    """The summarised features of each segment with features (empty ones have none)."""
    return [
        (
            segment.label,
            {name: segment.features[name] for name in BIN_WIDTHS if name in segment.features},
        )
        for segment in result.segments
        if segment.features
    ]


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


RADIOMICS_PLAN = FederatedPlan(
    name=WORKFLOW_NAME,
    workflow=WORKFLOW_NAME,
    aggregator=SummaryPooling(RADIOMICS_NAME, pool_radiomics),
    description="PyRadiomics shape and first-order features per segment label, summarised at "
    "every site and pooled centrally.",
)

__all__ = [
    "RADIOMICS_NAME",
    "RADIOMICS_PLAN",
    "WORKFLOW_NAME",
    "cases_of",
    "pool_radiomics",
    "summarize",
]
