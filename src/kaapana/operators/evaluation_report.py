"""The evaluation's results: one pair's scores as JSON (what a per-series task hands to the
run's report), and the run's table as CSV plus a self-contained HTML report with SVG charts."""

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Final

from kaapana.operators.charts import strip_chart
from kaapana.operators.evaluation import LabelMetrics

__all__ = ["PairResult", "read_pair", "write_pair", "write_results"]

_COLUMNS: Final = (
    "prediction_series_instance_uid",
    "reference_series_instance_uid",
    "image_series_instance_uid",
    "label",
    "reference_segment",
    "prediction_segment",
    "dice",
    "iou",
    "hd95_mm",
    "reference_ml",
    "prediction_ml",
    "volume_difference_ml",
    "status",
)
_STYLE: Final = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
    "margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th{background:#f4f4f4}td.text{text-align:left}"
)


@dataclass(frozen=True, slots=True)
class PairResult:
    prediction: str
    reference: str
    image: str
    metrics: list[LabelMetrics]


def write_pair(pair: PairResult, path: Path) -> Path:
    """``pair`` as JSON at ``path``, read back by :func:`read_pair`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "prediction": pair.prediction,
                "reference": pair.reference,
                "image": pair.image,
                "metrics": [metric.row() for metric in pair.metrics],
            },
            indent=1,
        )
    )
    return path


def read_pair(path: Path) -> PairResult:
    item = json.loads(path.read_text())
    return PairResult(
        item["prediction"],
        item["reference"],
        item["image"],
        [LabelMetrics(**metric) for metric in item["metrics"]],
    )


def _rows(pairs: Sequence[PairResult]) -> list[dict[str, Any]]:
    return [
        {
            "prediction_series_instance_uid": pair.prediction,
            "reference_series_instance_uid": pair.reference,
            "image_series_instance_uid": pair.image,
            **metric.row(),
        }
        for pair in pairs
        for metric in pair.metrics
    ]


def _mean(values: Sequence[float]) -> str:
    return f"{sum(values) / len(values):.4f}" if values else ""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"<td>{value:.4g}</td>"
    return f'<td class="text">{escape("" if value is None else str(value))}</td>'


def _html(rows: Sequence[dict[str, Any]]) -> str:
    labels = list(dict.fromkeys(row["label"] for row in rows))
    summary = []
    for label in labels:
        scored = [row for row in rows if row["label"] == label]
        summary.append(
            "<tr>"
            f'<td class="text">{escape(label)}</td><td>{len(scored)}</td>'
            + "".join(
                f"<td>{_mean([r[key] for r in scored if r[key] is not None])}</td>"
                for key in ("dice", "iou", "hd95_mm", "volume_difference_ml")
            )
            + "</tr>"
        )
    charts = [
        strip_chart(
            title,
            {
                label: [r[key] for r in rows if r["label"] == label and r[key] is not None]
                for label in labels
            },
        ).svg
        for key, title in (
            ("dice", "Dice per label"),
            ("hd95_mm", "HD95 per label (mm)"),
            ("volume_difference_ml", "Volume difference per label (ml, prediction - reference)"),
        )
    ]
    header = "".join(f"<th>{escape(column)}</th>" for column in _COLUMNS)
    details = "".join(
        "<tr>" + "".join(_cell(row[column]) for column in _COLUMNS) + "</tr>" for row in rows
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Segmentation evaluation'
        f"</title><style>{_STYLE}</style></head><body><h1>Segmentation evaluation</h1>"
        f"<p>{len({r['prediction_series_instance_uid'] for r in rows})} prediction SEGs, "
        f"{len(rows)} label comparisons.</p>"
        + "<h2>Per label (means)</h2><table><tr><th>label</th><th>pairs</th><th>Dice</th>"
        "<th>IoU</th><th>HD95 (mm)</th><th>volume difference (ml)</th></tr>"
        + "".join(summary)
        + "</table><h2>Charts</h2>"
        + "".join(f"<div>{chart}</div>" for chart in charts)
        + f"<h2>Every comparison</h2><table><tr>{header}</tr>{details}</table></body></html>"
    )


def write_results(pairs: Sequence[PairResult], out_dir: Path) -> list[Path]:
    """``metrics.csv``, ``metrics.json`` and ``report.html`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _rows(pairs)
    table = out_dir / "metrics.csv"
    with table.open("w", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=list(_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    document = out_dir / "metrics.json"
    document.write_text(json.dumps({"comparisons": rows}, indent=1))
    report = out_dir / "report.html"
    report.write_text(_html(rows))
    return [table, document, report]
