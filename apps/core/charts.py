"""Server-side SVG charts, shared by the browser pages and the PDF reports (one renderer, the same numbers).

Accessible (role="img", <title>, <desc>), deterministic, every label escaped, no external resources.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape

PALETTE = ["#1f4e79", "#2e7d32", "#b26a00", "#a4262c", "#5c3c92", "#00695c", "#6d4c41", "#37474f"]
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: undefined (e.g. a ratio of 0/0), drawn as no bar with the word "undefined"
    low: float | None = None
    high: float | None = None
    note: str = ""


def _fmt(value: float | None) -> str:
    if value is None:
        return "undefined"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10 or value == int(value):
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return f"{value:.2f}"


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> str:
    # Ids unique per chart (and deterministic): several charts share a page, and a repeated id would make every
    # chart announce the first one's title.
    key = "c" + hashlib.sha256(f"{title}\0{desc}".encode()).hexdigest()[:10]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-labelledby="{key}t {key}d" {FONT} font-size="12">'
        f'<title id="{key}t">{escape(title)}</title><desc id="{key}d">{escape(desc)}</desc>{"".join(body)}</svg>'
    )


def bar_chart(
    bars: list[Bar],
    *,
    title: str,
    unit: str = "",
    threshold: float | None = None,
    threshold_label: str = "threshold",
    max_value: float | None = None,
    width: int = 640,
) -> str:
    """Horizontal bars with optional interval whiskers and a dashed threshold line."""
    label_width, right, row = 190, 70, 26
    height = 40 + row * max(len(bars), 1) + 24
    top = max([v for b in bars for v in (b.high, b.value) if v is not None] + [threshold or 0, 1e-12])
    scale_max = max_value if max_value is not None else top * 1.1
    plot = width - label_width - right

    def x(value: float) -> float:
        return label_width + plot * max(0.0, min(value, scale_max)) / scale_max

    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    for index, bar in enumerate(bars):
        y = 34 + index * row
        color = PALETTE[index % len(PALETTE)]
        body.append(f'<text x="{label_width - 8}" y="{y + 13}" text-anchor="end">{escape(bar.label[:30])}</text>')
        if bar.value is not None:
            body.append(
                f'<rect x="{label_width}" y="{y + 2}" width="{x(bar.value) - label_width:.1f}" height="16" '
                f'fill="{color}"><title>{escape(bar.label)}: {_fmt(bar.value)}{escape(unit)}</title></rect>'
            )
        if bar.low is not None and bar.high is not None:
            body.append(
                f'<line x1="{x(bar.low):.1f}" x2="{x(bar.high):.1f}" y1="{y + 10}" y2="{y + 10}" '
                'stroke="#111" stroke-width="1.5"/>'
            )
            for end in (bar.low, bar.high):
                body.append(f'<line x1="{x(end):.1f}" x2="{x(end):.1f}" y1="{y + 5}" y2="{y + 15}" stroke="#111"/>')
        body.append(
            f'<text x="{max(x(bar.value or 0), x(bar.high or 0)) + 6:.1f}" y="{y + 14}">'
            f"{_fmt(bar.value)}{escape(unit) if bar.value is not None else ''}"
            f"{(' ' + escape(bar.note)) if bar.note else ''}</text>"
        )
    if threshold is not None:
        tx = x(threshold)
        body.append(
            f'<line class="threshold" x1="{tx:.1f}" x2="{tx:.1f}" y1="26" y2="{height - 18}" '
            'stroke="#a4262c" stroke-width="2" stroke-dasharray="5 4"/>'
        )
        body.append(
            f'<text x="{tx:.1f}" y="{height - 4}" text-anchor="middle" fill="#a4262c">'
            f"{escape(threshold_label)} {_fmt(threshold)}</text>"
        )
    desc = "; ".join(f"{b.label}: {_fmt(b.value)}{unit if b.value is not None else ''}" for b in bars)
    return _svg(width, height, title, desc, body)


def histogram(edges: list[float], counts: list[int], *, title: str, width: int = 320, height: int = 120) -> str:
    """Vertical bars for a numeric column's distribution."""
    if not counts:
        return _svg(width, 30, title, "no values", [f'<text x="0" y="20">{escape(title)}: no values</text>'])
    top = max(counts) or 1
    plot_h, bar_w = height - 34, (width - 10) / len(counts)
    body = [f'<text x="0" y="12" font-weight="bold">{escape(title)}</text>']
    for index, count in enumerate(counts):
        h = plot_h * count / top
        body.append(
            f'<rect x="{5 + index * bar_w:.1f}" y="{16 + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{_fmt(edges[index])} to {_fmt(edges[index + 1])}: '
            f"{count:,}</title></rect>"
        )
    body.append(f'<text x="5" y="{height - 4}">{_fmt(edges[0])}</text>')
    body.append(f'<text x="{width - 5}" y="{height - 4}" text-anchor="end">{_fmt(edges[-1])}</text>')
    return _svg(width, height, title, f"{sum(counts):,} values from {_fmt(edges[0])} to {_fmt(edges[-1])}", body)


def stacked_bar(parts: list[tuple[str, float, str]], *, title: str, width: int = 640) -> str:
    """One 100% bar split into labelled parts (label, share 0..1, colour), with a legend."""
    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    x, plot = 0.0, width
    for label, share, color in parts:
        w = plot * max(share, 0)
        body.append(
            f'<rect x="{x:.1f}" y="26" width="{w:.1f}" height="28" fill="{color}">'
            f"<title>{escape(label)}: {share:.1%}</title></rect>"
        )
        x += w
    for index, (label, share, color) in enumerate(parts):
        lx = (index % 4) * (width / 4)
        ly = 74 + (index // 4) * 18
        body.append(f'<rect x="{lx:.1f}" y="{ly - 10}" width="12" height="12" fill="{color}"/>')
        body.append(f'<text x="{lx + 16:.1f}" y="{ly}">{escape(label)} {share:.1%}</text>')
    desc = "; ".join(f"{label}: {share:.1%}" for label, share, _c in parts)
    return _svg(width, 80 + 18 * ((len(parts) - 1) // 4 + 1), title, desc, body)


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 240,
) -> str:
    """Lines for curves such as loss or epsilon spent over steps."""
    points = [p for values in series.values() for p in values]
    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    if not points:
        return _svg(width, 40, title, "no data", body)
    x_min, x_max = min(p[0] for p in points), max(p[0] for p in points)
    y_min, y_max = min(0.0, min(p[1] for p in points)), max(p[1] for p in points) or 1.0
    left, bottom, top_pad = 50, height - 30, 26

    def sx(v: float) -> float:
        return left + (width - left - 10) * ((v - x_min) / ((x_max - x_min) or 1))

    def sy(v: float) -> float:
        return bottom - (bottom - top_pad) * ((v - y_min) / ((y_max - y_min) or 1))

    body.append(f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="#555"/>')
    body.append(f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{bottom}" stroke="#555"/>')
    body.append(f'<text x="{left - 4}" y="{sy(y_max) + 4:.1f}" text-anchor="end">{_fmt(y_max)}</text>')
    body.append(f'<text x="{left - 4}" y="{bottom}" text-anchor="end">{_fmt(y_min)}</text>')
    body.append(f'<text x="{width - 10}" y="{height - 6}" text-anchor="end">{escape(x_label)} {_fmt(x_max)}</text>')
    body.append(f'<text x="{left + 6}" y="{top_pad + 12}" fill="#555">{escape(y_label)}</text>')
    for index, (name, values) in enumerate(series.items()):
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(a):.1f},{sy(b):.1f}" for i, (a, b) in enumerate(values))
        color = PALETTE[index % len(PALETTE)]
        body.append(
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"><title>{escape(name)}</title></path>'
        )
    desc = "; ".join(
        f"{name}: {len(values)} points, last {_fmt(values[-1][1])}" for name, values in series.items() if values
    )
    return _svg(width, height, title, desc, body)
