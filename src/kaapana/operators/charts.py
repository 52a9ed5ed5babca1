"""Small, self-contained SVG charts for workflow reports (no plotting library needed).

Reports of radiomics and evaluation runs show one number per series and group (a segment
label): a strip chart per measure, dots per series with the group's median as a bar, is what a
reader needs to spot outliers. Training shows metrics per epoch as lines. The SVG is plain
text, so it embeds into HTML as it is.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

_WIDTH: Final = 640
_ROW: Final = 28
_LEFT: Final = 140
_RIGHT: Final = 24
_TOP: Final = 40
_BOTTOM: Final = 36


@dataclass(frozen=True, slots=True)
class Chart:
    svg: str
    height: int


def _ticks(low: float, high: float) -> list[float]:
    if high == low:
        return [low]
    return [low + (high - low) * index / 4 for index in range(5)]


def _number(value: float) -> str:
    return f"{value:.4g}"


def strip_chart(title: str, groups: Mapping[str, Sequence[float]]) -> Chart:
    """One row per group (segment label) with a dot per value and a bar at the median."""
    values = [value for series in groups.values() for value in series]
    height = _TOP + _BOTTOM + _ROW * max(len(groups), 1)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = high - low or abs(high) or 1.0
    low, high = (low, high) if high > low else (low - span / 2, high + span / 2)
    plot = _WIDTH - _LEFT - _RIGHT

    def x(value: float) -> float:
        return _LEFT + (value - low) / (high - low) * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    axis = height - _BOTTOM
    parts.append(
        f'<line x1="{_LEFT}" y1="{axis}" x2="{_WIDTH - _RIGHT}" y2="{axis}" stroke="#444"/>'
    )
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{axis}" x2="{x(tick):.1f}" y2="{axis + 4}" '
            f'stroke="#444"/><text x="{x(tick):.1f}" y="{axis + 16}" text-anchor="middle">'
            f"{_number(tick)}</text>"
        )
    for row, (group, series) in enumerate(groups.items()):
        y = _TOP + _ROW * row + _ROW / 2
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(group)}</text>'
        )
        for value in series:
            parts.append(
                f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4" fill="#1f77b4" '
                f'fill-opacity="0.6"><title>{_number(value)}</title></circle>'
            )
        if series:
            ordered = sorted(series)
            middle = len(ordered) // 2
            median = (
                ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
            )
            parts.append(
                f'<line x1="{x(median):.1f}" y1="{y - 9:.1f}" x2="{x(median):.1f}" '
                f'y2="{y + 9:.1f}" stroke="#d62728" stroke-width="2"/>'
            )
    parts.append("</svg>")
    return Chart("\n".join(parts), height)


def svg_document(charts: Sequence[Chart]) -> str:
    """Several charts stacked into one SVG file."""
    total = sum(chart.height for chart in charts) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{total}" '
        f'viewBox="0 0 {_WIDTH} {total}">'
    ]
    offset = 0
    for chart in charts:
        parts.append(f'<g transform="translate(0,{offset})">{chart.svg}</g>')
        offset += chart.height
    parts.append("</svg>")
    return "\n".join(parts)


_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_LINE_HEIGHT, _MARGIN = 360, 48


def line_chart(
    lines: Mapping[str, Sequence[float]], *, title: str, x_label: str, y_label: str
) -> str:
    """One polyline per entry over x = 1, 2, ...; the y axis spans the data (0 included)."""
    values = [v for line in lines.values() for v in line]
    if not values:
        raise ValueError("a chart needs at least one value")
    low, high = min(0.0, *values), max(values)
    high = high if high > low else low + 1.0
    count = max(len(line) for line in lines.values())
    plot_w, plot_h = _WIDTH - 2 * _MARGIN, _LINE_HEIGHT - 2 * _MARGIN

    def x(index: int) -> float:
        return _MARGIN + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return _MARGIN + plot_h * (1 - (value - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_LINE_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_LINE_HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{_LINE_HEIGHT}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{_MARGIN}" y1="{_MARGIN + plot_h}" x2="{_MARGIN + plot_w}" '
        f'y2="{_MARGIN + plot_h}" stroke="black"/>',
        f'<line x1="{_MARGIN}" y1="{_MARGIN}" x2="{_MARGIN}" y2="{_MARGIN + plot_h}" '
        'stroke="black"/>',
        f'<text x="{_WIDTH / 2}" y="{_LINE_HEIGHT - 10}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text x="14" y="{_LINE_HEIGHT / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_LINE_HEIGHT / 2})">{escape(y_label)}</text>',
    ]
    for value in (low, (low + high) / 2, high):
        parts.append(
            f'<text x="{_MARGIN - 4}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.3g}</text>'
        )
    parts.append(f'<text x="{x(0):.1f}" y="{_MARGIN + plot_h + 16}" text-anchor="middle">1</text>')
    parts.append(
        f'<text x="{x(count - 1):.1f}" y="{_MARGIN + plot_h + 16}" '
        f'text-anchor="middle">{count}</text>'
    )
    for number, (name, line) in enumerate(lines.items()):
        colour = _COLOURS[number % len(_COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        parts.append(
            f'<text x="{_MARGIN + plot_w - 4}" y="{_MARGIN + 14 * (number + 1)}" '
            f'text-anchor="end" fill="{colour}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


__all__ = ["Chart", "line_chart", "strip_chart", "svg_document"]
