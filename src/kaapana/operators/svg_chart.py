"""A small SVG line chart, for metric plots kept as artifacts (no plotting library needed)."""

from collections.abc import Mapping, Sequence
from typing import Final
from xml.sax.saxutils import escape

__all__ = ["line_chart"]

_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_WIDTH, _HEIGHT, _MARGIN = 640, 360, 48


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
    plot_w, plot_h = _WIDTH - 2 * _MARGIN, _HEIGHT - 2 * _MARGIN

    def x(index: int) -> float:
        return _MARGIN + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return _MARGIN + plot_h * (1 - (value - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{_MARGIN}" y1="{_MARGIN + plot_h}" x2="{_MARGIN + plot_w}" '
        f'y2="{_MARGIN + plot_h}" stroke="black"/>',
        f'<line x1="{_MARGIN}" y1="{_MARGIN}" x2="{_MARGIN}" y2="{_MARGIN + plot_h}" '
        'stroke="black"/>',
        f'<text x="{_WIDTH / 2}" y="{_HEIGHT - 10}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="14" y="{_HEIGHT / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_HEIGHT / 2})">{escape(y_label)}</text>',
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
