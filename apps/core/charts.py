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
    absent: str = "undefined"  # what a bar without a value says instead (e.g. "too few rows": hidden, not undefined)


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
            f"{escape(bar.absent) if bar.value is None else _fmt(bar.value)}{escape(unit) if bar.value is not None else ''}"
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
    desc = "; ".join(f"{b.label}: {b.absent if b.value is None else _fmt(b.value) + unit}" for b in bars)
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


@dataclass(frozen=True)
class Series:
    """One line over time: a value per point (None where there is none, drawn as a gap, never as zero) and an optional
    interval band (``low``/``high`` per point)."""

    name: str
    values: tuple[float | None, ...]
    low: tuple[float | None, ...] = ()
    high: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line across a time series, such as a warn or an alert threshold."""

    label: str
    value: float
    color: str = "#a4262c"


GAP_FILL, GAP_STROKE, MARKER_COLOR = "#eceff1", "#78909c", "#a4262c"


def _runs(present: list[bool]) -> list[list[int]]:
    """Indices split into maximal runs of consecutive present points."""
    runs: list[list[int]] = []
    for index, ok in enumerate(present):
        if not ok:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def time_series(
    points: list[str],
    series: list[Series],
    *,
    title: str,
    y_label: str = "",
    rules: tuple[Rule, ...] | list[Rule] = (),
    gaps: frozenset[int] | set[int] | tuple[int, ...] = (),
    gap_label: str = "insufficient data",
    markers: dict[int, str] | None = None,
    marker_label: str = "alert opened",
    band_label: str = "95% interval",
    min_value: float | None = None,
    max_value: float | None = None,
    width: int = 720,
    height: int = 240,
) -> str:
    """Values over time (monitoring windows): one line per series with its interval band, horizontal threshold
    lines, shaded columns where a point has too little data (a gap, never a zero) and triangles where an alert
    opened. The legend says what each mark means; the description lists every value for screen readers."""
    markers = markers or {}
    gaps = frozenset(gaps)
    count = len(points)
    left, right, top = 58, 100, 30
    plot_bottom = height - 40
    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    if not count:
        return _svg(width, 40, title, "no points", body + ['<text x="0" y="34">No windows yet.</text>'])
    slot = (width - left - right) / count
    numbers = [v for s in series for v in (*s.values, *s.low, *s.high) if v is not None] + [r.value for r in rules]
    low_end = min_value if min_value is not None else min([0.0, *numbers])
    high_end = max_value if max_value is not None else (max(numbers) * 1.1 if numbers else 1.0)
    if high_end <= low_end:
        high_end = low_end + 1.0

    def sx(index: int) -> float:
        return left + slot * (index + 0.5)

    def sy(value: float) -> float:
        clamped = max(low_end, min(value, high_end))
        return plot_bottom - (plot_bottom - top) * (clamped - low_end) / (high_end - low_end)

    for index in sorted(gaps):
        if 0 <= index < count:
            body.append(
                f'<rect x="{left + slot * index:.1f}" y="{top}" width="{slot:.1f}" height="{plot_bottom - top}" '
                f'fill="{GAP_FILL}" stroke="{GAP_STROKE}" stroke-dasharray="3 3">'
                f"<title>{escape(points[index])}: {escape(gap_label)}</title></rect>"
            )
            if slot >= 26:
                body.append(
                    f'<text x="{sx(index):.1f}" y="{plot_bottom - 6}" text-anchor="middle" font-size="10" '
                    f'fill="#37474f">n/a</text>'
                )
    # Axes and the value scale.
    body.append(f'<line x1="{left}" y1="{plot_bottom}" x2="{width - right}" y2="{plot_bottom}" stroke="#555"/>')
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{plot_bottom}" stroke="#555"/>')
    for value in (low_end, (low_end + high_end) / 2, high_end):
        body.append(
            f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end" font-size="11">{_fmt(value)}</text>'
        )
    if y_label:
        body.append(f'<text x="{left + 6}" y="{top - 4}" fill="#555" font-size="11">{escape(y_label)}</text>')
    step = max(1, -(-count // 12))  # at most about twelve date labels
    for index in range(0, count, step):
        body.append(
            f'<text x="{sx(index):.1f}" y="{plot_bottom + 16}" text-anchor="middle" font-size="11">'
            f"{escape(points[index])}</text>"
        )
    for rule in rules:
        y = sy(rule.value)
        body.append(
            f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{rule.color}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        # A short name fits beside its line; a long one is in the legend, and the line carries its value only.
        said = f"{rule.label} {_fmt(rule.value)}" if len(rule.label) <= 9 else _fmt(rule.value)
        body.append(
            f'<text x="{width - right + 4}" y="{y + 4:.1f}" font-size="11" fill="{rule.color}">{escape(said)}</text>'
        )
    # Bands under the lines, so no band hides a line.
    for index, item in enumerate(series):
        if not item.low or not item.high:
            continue
        color = PALETTE[index % len(PALETTE)]
        bounds = {
            i: (lo, hi)
            for i, (lo, hi) in enumerate(zip(item.low[:count], item.high[:count], strict=False))
            if lo is not None and hi is not None
        }
        for run in _runs([i in bounds for i in range(count)]):
            if len(run) == 1:
                lo, hi = bounds[run[0]]
                x = sx(run[0])
                body.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{sy(lo):.1f}" y2="{sy(hi):.1f}" stroke="{color}" '
                    'stroke-width="6" stroke-opacity="0.25"/>'
                )
                continue
            upper = [f"{sx(i):.1f},{sy(bounds[i][1]):.1f}" for i in run]
            lower = [f"{sx(i):.1f},{sy(bounds[i][0]):.1f}" for i in reversed(run)]
            body.append(
                f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.18" stroke="none">'
                f"<title>{escape(item.name)}: {escape(band_label)}</title></polygon>"
            )
    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        values = list(item.values[:count])
        known = {i: v for i, v in enumerate(values) if v is not None}
        for run in _runs([i in known for i in range(count)]):
            path = " ".join(f"{'M' if n == 0 else 'L'}{sx(i):.1f},{sy(known[i]):.1f}" for n, i in enumerate(run))
            body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, value in enumerate(values):
            if value is None:
                continue
            low = item.low[i] if i < len(item.low) else None
            high = item.high[i] if i < len(item.high) else None
            interval = f" [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else ""
            body.append(
                f'<circle cx="{sx(i):.1f}" cy="{sy(value):.1f}" r="3" fill="{color}">'
                f"<title>{escape(item.name)}, {escape(points[i])}: {_fmt(value)}{interval}</title></circle>"
            )
    for index, text in sorted(markers.items()):
        if not 0 <= index < count:
            continue
        x = sx(index)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{plot_bottom}" stroke="{MARKER_COLOR}" '
            'stroke-width="1" stroke-dasharray="2 3"/>'
        )
        body.append(
            f'<path d="M{x - 6:.1f},{top - 10} L{x + 6:.1f},{top - 10} L{x:.1f},{top} Z" fill="{MARKER_COLOR}">'
            f"<title>{escape(points[index])}: {escape(text)}</title></path>"
        )
    # The legend: every kind of mark used, in words.
    legend: list[tuple[str, str]] = []
    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        legend.append((f'<line x1="0" x2="18" y1="-4" y2="-4" stroke="{color}" stroke-width="2"/>', item.name))
    if any(s.low and s.high for s in series):
        legend.append(
            (f'<rect x="0" y="-10" width="18" height="12" fill="{PALETTE[0]}" fill-opacity="0.18"/>', band_label)
        )
    for rule in rules:
        legend.append(
            (
                f'<line x1="0" x2="18" y1="-4" y2="-4" stroke="{rule.color}" stroke-width="1.5" '
                'stroke-dasharray="6 4"/>',
                f"{rule.label} {_fmt(rule.value)}",
            )
        )
    if gaps:
        legend.append(
            (
                f'<rect x="0" y="-10" width="18" height="12" fill="{GAP_FILL}" stroke="{GAP_STROKE}" '
                'stroke-dasharray="3 3"/>',
                f"{gap_label} (no value drawn)",
            )
        )
    if markers:
        legend.append((f'<path d="M3,-10 L15,-10 L9,0 Z" fill="{MARKER_COLOR}"/>', marker_label))
    columns = max(1, min(3, width // 240))
    column_width = (width - 10) / columns
    for index, (mark, label) in enumerate(legend):
        lx = 5 + (index % columns) * column_width
        ly = height + 4 + (index // columns) * 18
        body.append(f'<g transform="translate({lx:.1f},{ly})">{mark}<text x="24" y="0">{escape(label[:48])}</text></g>')
    total_height = height + 10 + 18 * (-(-len(legend) // columns))
    desc_parts = [f"{count} windows, {points[0]} to {points[-1]}"]
    for item in series:
        cells = []
        for i, value in enumerate(item.values[:count]):
            if value is None:
                cells.append(f"{points[i]} {gap_label if i in gaps else 'no value'}")
            else:
                cells.append(f"{points[i]} {_fmt(value)}")
        desc_parts.append(f"{item.name}: " + ", ".join(cells))
    desc_parts += [f"{rule.label} {_fmt(rule.value)}" for rule in rules]
    if markers:
        desc_parts.append(f"{marker_label}: " + ", ".join(points[i] for i in sorted(markers) if 0 <= i < count))
    return _svg(width, total_height, title, "; ".join(desc_parts), body)


@dataclass(frozen=True)
class Importance:
    """One feature of a model explanation: its mean |attribution| (log-odds) and its permutation importance (the drop
    in accuracy when it is shuffled) with that drop's interval over the shuffles."""

    feature: str
    attribution: float
    importance: float | None = None
    low: float | None = None
    high: float | None = None


def importance_chart(rows: list[Importance], *, title: str, width: int = 720) -> str:
    """Two panels sharing one row per feature: bars of mean |attribution| (left) and the permutation importance as a
    point with its interval as whiskers (right). The two measures have different units (log-odds, accuracy), so
    each has its own scale instead of sharing one axis."""
    label_width, gap, right, row = 170, 40, 60, 24
    panel = (width - label_width - gap - right) / 2
    top, height = 48, 48 + row * max(len(rows), 1) + 22
    attribution_max = max([r.attribution for r in rows] + [1e-12]) * 1.1
    spans = [v for r in rows for v in (r.importance, r.low, r.high) if v is not None]
    low_end, high_end = min([0.0, *spans]), max([0.0, *spans])
    if high_end - low_end < 1e-12:
        high_end = low_end + 1e-3
    pad = 0.05 * (high_end - low_end)
    low_end, high_end = low_end - (pad if low_end < 0 else 0), high_end + pad
    right_start = label_width + panel + gap

    def ax(value: float) -> float:
        return label_width + panel * max(0.0, min(value, attribution_max)) / attribution_max

    def px(value: float) -> float:
        return right_start + panel * (max(low_end, min(value, high_end)) - low_end) / (high_end - low_end)

    body = [
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="{label_width}" y="38" fill="#555">Mean |attribution| (log-odds)</text>',
        f'<text x="{right_start:.1f}" y="38" fill="#555">Permutation importance (accuracy drop)</text>',
        f'<line x1="{px(0):.1f}" x2="{px(0):.1f}" y1="{top - 4}" y2="{height - 18}" stroke="#999" '
        'stroke-dasharray="2 3"/>',
    ]
    for index, item in enumerate(rows):
        y = top + index * row
        body.append(f'<text x="{label_width - 8}" y="{y + 13}" text-anchor="end">{escape(item.feature[:26])}</text>')
        body.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{ax(item.attribution) - label_width:.1f}" height="14" '
            f'fill="{PALETTE[0]}"><title>{escape(item.feature)}: mean |attribution| {_fmt(item.attribution)}'
            "</title></rect>"
        )
        body.append(f'<text x="{ax(item.attribution) + 4:.1f}" y="{y + 14}">{_fmt(item.attribution)}</text>')
        if item.low is not None and item.high is not None:
            body.append(
                f'<line x1="{px(item.low):.1f}" x2="{px(item.high):.1f}" y1="{y + 10}" y2="{y + 10}" stroke="#111" '
                'stroke-width="1.5"/>'
            )
            for end in (item.low, item.high):
                body.append(f'<line x1="{px(end):.1f}" x2="{px(end):.1f}" y1="{y + 5}" y2="{y + 15}" stroke="#111"/>')
        if item.importance is not None:
            body.append(
                f'<circle cx="{px(item.importance):.1f}" cy="{y + 10}" r="4" fill="{PALETTE[2]}">'
                f"<title>{escape(item.feature)}: accuracy drop {_fmt(item.importance)}</title></circle>"
            )
    ticks = [low_end, high_end] + ([0.0] if px(0) - px(low_end) > 30 and px(high_end) - px(0) > 30 else [])
    for value in ticks:
        body.append(
            f'<text x="{px(value):.1f}" y="{height - 4}" text-anchor="middle" font-size="11">{value:.3g}</text>'
        )
    body.append(f'<text x="{label_width}" y="{height - 4}" font-size="11">0</text>')
    body.append(
        f'<text x="{ax(attribution_max):.1f}" y="{height - 4}" text-anchor="end" font-size="11">'
        f"{_fmt(attribution_max)}</text>"
    )

    def interval(item: Importance) -> str:
        if item.low is None or item.high is None:
            return ""
        return f" [{item.low:.3f}, {item.high:.3f}]"

    desc = "; ".join(
        f"{r.feature}: mean |attribution| {_fmt(r.attribution)}, permutation importance "
        f"{'not computed' if r.importance is None else f'{r.importance:.3f}'}{interval(r)}"
        for r in rows
    )
    return _svg(width, height, title, desc, body)


@dataclass(frozen=True)
class GroupValues:
    """One group's value per feature (in the chart's feature order), or None when the group is too small to show."""

    label: str
    values: tuple[float, ...] | None
    rows: int = 0


def group_comparison_chart(
    features: list[str],
    groups: list[GroupValues],
    *,
    title: str,
    overall: tuple[float, ...] = (),
    hidden_label: str = "too few rows",
    width: int = 720,
) -> str:
    """A dot per group on each feature's row (the feature's mean |attribution| within that group), with the value over
    all rows as a tick: a dot far from the tick is a feature that weighs more (or less) for that group. A group too
    small to show has no dots; the legend names it with its size and ``hidden_label``."""
    label_width, right, row = 170, 30, 22
    top = 30
    plot_bottom = top + row * max(len(features), 1)
    shown = [g for g in groups if g.values is not None]
    numbers = [v for g in shown for v in g.values or ()] + list(overall) + [1e-12]
    scale = max(numbers) * 1.1
    plot = width - label_width - right

    def x(value: float) -> float:
        return label_width + plot * max(0.0, min(value, scale)) / scale

    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    for index, feature in enumerate(features):
        y = top + index * row + row / 2
        body.append(f'<text x="{label_width - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(feature[:26])}</text>')
        body.append(f'<line x1="{label_width}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        if index < len(overall):
            body.append(
                f'<line x1="{x(overall[index]):.1f}" x2="{x(overall[index]):.1f}" y1="{y - 7:.1f}" y2="{y + 7:.1f}" '
                f'stroke="#111" stroke-width="2"><title>{escape(feature)}, all rows: {_fmt(overall[index])}</title>'
                "</line>"
            )
        for number, group in enumerate(groups):
            if group.values is None or index >= len(group.values):
                continue
            value = group.values[index]
            body.append(
                f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4.5" fill="{PALETTE[number % len(PALETTE)]}" '
                f'fill-opacity="0.85"><title>{escape(feature)}, {escape(group.label)}: {_fmt(value)}</title></circle>'
            )
    body.append(f'<text x="{label_width}" y="{plot_bottom + 14}" font-size="11">0</text>')
    body.append(
        f'<text x="{width - right}" y="{plot_bottom + 14}" text-anchor="end" font-size="11">'
        f"{_fmt(scale)} mean |attribution| (log-odds)</text>"
    )
    legend: list[tuple[str, str]] = []
    if overall:
        legend.append(('<line x1="6" x2="6" y1="-11" y2="1" stroke="#111" stroke-width="2"/>', "all rows"))
    for number, group in enumerate(groups):
        if group.values is None:
            legend.append(
                (
                    '<circle cx="6" cy="-5" r="4.5" fill="none" stroke="#78909c" stroke-dasharray="2 2"/>',
                    f"{group.label}: {hidden_label} ({group.rows})",
                )
            )
        else:
            color = PALETTE[number % len(PALETTE)]
            legend.append((f'<circle cx="6" cy="-5" r="4.5" fill="{color}"/>', f"{group.label} ({group.rows} rows)"))
    columns = 3
    column_width = (width - 10) / columns
    for index, (mark, label) in enumerate(legend):
        lx = 5 + (index % columns) * column_width
        ly = plot_bottom + 36 + (index // columns) * 18
        body.append(f'<g transform="translate({lx:.1f},{ly})">{mark}<text x="16" y="0">{escape(label[:44])}</text></g>')
    height = plot_bottom + 30 + 18 * (-(-len(legend) // columns))
    parts = []
    for group in groups:
        if group.values is None:
            parts.append(f"{group.label} ({group.rows} rows): {hidden_label}")
        else:
            cells = ", ".join(f"{f} {_fmt(v)}" for f, v in zip(features, group.values, strict=False))
            parts.append(f"{group.label} ({group.rows} rows): {cells}")
    if overall:
        parts.insert(0, "all rows: " + ", ".join(f"{f} {_fmt(v)}" for f, v in zip(features, overall, strict=False)))
    return _svg(width, height, title, "; ".join(parts), body)


@dataclass(frozen=True)
class Curve:
    """One metric against perturbation level: (level, value) points, value None where it is undefined (no point)."""

    name: str
    points: tuple[tuple[float, float | None], ...]
    dashed: bool = False


def level_chart(
    curves: list[Curve],
    *,
    title: str,
    x_label: str,
    y_label: str = "",
    min_value: float = 0.0,
    max_value: float | None = None,
    width: int = 640,
    height: int = 220,
) -> str:
    """Metrics against the strength of a perturbation (level 0 = the unperturbed rows): a line with a marker per
    measured level, a legend, and every value in the description. The levels are evenly spaced and each is labelled
    (they are a few chosen strengths, such as 0.1, 0.25, 0.5 and 4, not a continuous scale)."""
    left, right, top = 50, 20, 28
    plot_bottom = height - 36
    levels = sorted({level for curve in curves for level, _v in curve.points})
    values = [v for curve in curves for _l, v in curve.points if v is not None]
    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    if not levels:
        return _svg(width, 40, title, "no data", body)
    high_end = max_value if max_value is not None else max([min_value + 1e-12, *values]) * 1.1
    if high_end <= min_value:
        high_end = min_value + 1.0
    position = {level: index for index, level in enumerate(levels)}

    def sx(level: float) -> float:
        return left + 12 + (width - left - right - 24) * (position[level] / ((len(levels) - 1) or 1))

    def sy(value: float) -> float:
        clamped = max(min_value, min(value, high_end))
        return plot_bottom - (plot_bottom - top) * (clamped - min_value) / (high_end - min_value)

    body.append(f'<line x1="{left}" y1="{plot_bottom}" x2="{width - right}" y2="{plot_bottom}" stroke="#555"/>')
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{plot_bottom}" stroke="#555"/>')
    for value in (min_value, (min_value + high_end) / 2, high_end):
        body.append(
            f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end" font-size="11">{_fmt(value)}</text>'
        )
    for level in levels:
        body.append(
            f'<text x="{sx(level):.1f}" y="{plot_bottom + 14}" text-anchor="middle" font-size="11">{level:g}</text>'
        )
    body.append(
        f'<text x="{width - right}" y="{plot_bottom + 28}" text-anchor="end" font-size="11" fill="#555">'
        f"{escape(x_label)}</text>"
    )
    if y_label:
        body.append(f'<text x="{left + 6}" y="{top - 4}" fill="#555" font-size="11">{escape(y_label)}</text>')
    for index, curve in enumerate(curves):
        color = PALETTE[index % len(PALETTE)]
        known = [(level, value) for level, value in sorted(curve.points) if value is not None]
        dash = ' stroke-dasharray="6 4"' if curve.dashed else ""
        if len(known) > 1:
            path = " ".join(f"{'M' if n == 0 else 'L'}{sx(a):.1f},{sy(b):.1f}" for n, (a, b) in enumerate(known))
            body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for level, value in known:
            body.append(
                f'<circle cx="{sx(level):.1f}" cy="{sy(value):.1f}" r="3" fill="{color}">'
                f"<title>{escape(curve.name)} at {level:g}: {_fmt(value)}</title></circle>"
            )
    columns = 3
    column_width = (width - 10) / columns
    for index, curve in enumerate(curves):
        color = PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if curve.dashed else ""
        lx = 5 + (index % columns) * column_width
        ly = height + 4 + (index // columns) * 18
        body.append(
            f'<g transform="translate({lx:.1f},{ly})"><line x1="0" x2="18" y1="-4" y2="-4" stroke="{color}" '
            f'stroke-width="2"{dash}/><text x="24" y="0">{escape(curve.name[:44])}</text></g>'
        )
    total_height = height + 10 + 18 * (-(-len(curves) // columns))
    desc = "; ".join(
        f"{curve.name}: "
        + ", ".join(f"at {level:g} {'undefined' if value is None else _fmt(value)}" for level, value in curve.points)
        for curve in curves
    )
    return _svg(width, total_height, title, desc, body)


@dataclass(frozen=True)
class Point:
    """A labelled point with optional intervals on either axis (None where there is no interval)."""

    label: str
    x: float
    y: float
    x_low: float | None = None
    x_high: float | None = None
    y_low: float | None = None
    y_high: float | None = None
    highlight: bool = False  # drawn larger: the model the page is about


def scatter_chart(
    points: list[Point],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_better: str = "left",
    width: int = 640,
    height: int = 320,
) -> str:
    """Points with interval whiskers on both axes, such as accuracy against disparity for a model and its mitigated
    candidates. ``x_better`` ("left" or "right") says which way the x metric improves, printed under the axis."""
    left, right, top, bottom_pad = 56, 24, 30, 46
    plot_bottom = height - bottom_pad
    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    if not points:
        return _svg(width, 40, title, "no points", body + ['<text x="0" y="34">Nothing to compare yet.</text>'])
    xs = [v for p in points for v in (p.x, p.x_low, p.x_high) if v is not None]
    ys = [v for p in points for v in (p.y, p.y_low, p.y_high) if v is not None]
    x_min, x_max = min(0.0, min(xs)), max(xs)
    y_pad = max((max(ys) - min(ys)) * 0.15, 0.01)
    y_min, y_max = max(0.0, min(ys) - y_pad), min(1.0, max(ys) + y_pad) if max(ys) <= 1 else max(ys) + y_pad
    x_max = x_max + max((x_max - x_min) * 0.1, 0.01)

    def sx(value: float) -> float:
        return left + (width - left - right) * (value - x_min) / ((x_max - x_min) or 1)

    def sy(value: float) -> float:
        return plot_bottom - (plot_bottom - top) * (value - y_min) / ((y_max - y_min) or 1)

    body.append(f'<line x1="{left}" y1="{plot_bottom}" x2="{width - right}" y2="{plot_bottom}" stroke="#555"/>')
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{plot_bottom}" stroke="#555"/>')
    for value in (y_min, (y_min + y_max) / 2, y_max):
        body.append(f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end" font-size="11">{value:.3f}</text>')
    for value in (x_min, (x_min + x_max) / 2, x_max):
        body.append(
            f'<text x="{sx(value):.1f}" y="{plot_bottom + 15}" text-anchor="middle" font-size="11">{value:.3f}</text>'
        )
    arrow = "better ←" if x_better == "left" else "→ better"
    body.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 8}" text-anchor="middle">'
        f"{escape(x_label)} ({arrow})</text>"
    )
    body.append(f'<text x="{left + 6}" y="{top + 12}" fill="#555">{escape(y_label)} (higher is better)</text>')
    for index, point in enumerate(points):
        color = PALETTE[index % len(PALETTE)]
        cx, cy = sx(point.x), sy(point.y)
        if point.x_low is not None and point.x_high is not None:
            body.append(
                f'<line x1="{sx(point.x_low):.1f}" x2="{sx(point.x_high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                f'stroke="{color}" stroke-width="1.5"/>'
            )
        if point.y_low is not None and point.y_high is not None:
            body.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{sy(point.y_low):.1f}" y2="{sy(point.y_high):.1f}" '
                f'stroke="{color}" stroke-width="1.5"/>'
            )
        radius = 7 if point.highlight else 5
        body.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" fill="{color}" stroke="#111">'
            f"<title>{escape(point.label)}: {escape(x_label)} {point.x:.3f}, {escape(y_label)} {point.y:.3f}</title>"
            "</circle>"
        )
        body.append(f'<text x="{cx + 9:.1f}" y="{cy - 7:.1f}" font-size="11">{escape(point.label[:40])}</text>')

    def interval(low: float | None, high: float | None) -> str:
        return f" (95% interval {low:.3f} to {high:.3f})" if low is not None and high is not None else ""

    desc = "; ".join(
        f"{p.label}: {x_label} {p.x:.3f}{interval(p.x_low, p.x_high)}, {y_label} {p.y:.3f}{interval(p.y_low, p.y_high)}"
        for p in points
    )
    return _svg(width, height, title, desc, body)


def contribution_chart(items: list[tuple[str, float]], *, title: str, unit: str = "log-odds", width: int = 640) -> str:
    """Diverging horizontal bars around zero, one per (label, contribution): to the right (raises) or the left
    (lowers), such as each feature's contribution to one row's score relative to a baseline."""
    label_width, right, row = 190, 70, 24
    height = 40 + row * max(len(items), 1) + 24
    reach = max([abs(value) for _label, value in items] + [1e-12]) * 1.1
    plot = width - label_width - right
    middle = label_width + plot / 2

    def x(value: float) -> float:
        return middle + (plot / 2) * max(-reach, min(value, reach)) / reach

    body = [
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{middle:.1f}" x2="{middle:.1f}" y1="28" y2="{height - 20}" stroke="#555"/>',
        f'<text x="{label_width}" y="{height - 4}" font-size="11" fill="#555">← lowers</text>',
        f'<text x="{width - right}" y="{height - 4}" font-size="11" fill="#555" text-anchor="end">raises →</text>',
    ]
    for index, (label, value) in enumerate(items):
        y = 34 + index * row
        color = PALETTE[1] if value >= 0 else PALETTE[3]
        start, end = sorted((x(0.0), x(value)))
        body.append(f'<text x="{label_width - 8}" y="{y + 13}" text-anchor="end">{escape(label[:30])}</text>')
        body.append(
            f'<rect x="{start:.1f}" y="{y + 2}" width="{max(end - start, 0.5):.1f}" height="16" fill="{color}">'
            f"<title>{escape(label)}: {value:+.3f} {escape(unit)}</title></rect>"
        )
        # Values in a column of their own at the right: a long bar to the left would run into the labels.
        body.append(f'<text x="{width - right + 8}" y="{y + 14}" font-size="11">{value:+.3f}</text>')
    desc = "; ".join(
        f"{label}: {'raises' if value >= 0 else 'lowers'} by {abs(value):.3f} {unit}" for label, value in items
    )
    return _svg(width, height, title, desc, body)


def heat_map(
    counts: list[list[int]],
    *,
    title: str,
    row_labels: list[str],
    column_labels: list[str],
    row_axis: str,
    column_axis: str,
    bands: list[list[str]] | None = None,
    width: int = 560,
) -> str:
    """A grid of counts (``counts[row][column]``, the first row drawn at the top), each cell shaded by its band
    ("low", "medium", "high", "very_high") and labelled with its count, so nothing depends on colour alone."""
    band_fill = {"low": "#e3f1e4", "medium": "#fff3c4", "high": "#fbd5b5", "very_high": "#f3b7b9"}
    label_width, top, cell_h = 120, 34, 40
    columns = max(len(column_labels), 1)
    cell_w = (width - label_width - 10) / columns
    height = top + cell_h * len(row_labels) + 44
    body = [f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    parts = []
    for r, row_label in enumerate(row_labels):
        y = top + r * cell_h
        body.append(
            f'<text x="{label_width - 8}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">{escape(row_label)}</text>'
        )
        for c, column_label in enumerate(column_labels):
            x = label_width + c * cell_w
            value = counts[r][c] if r < len(counts) and c < len(counts[r]) else 0
            band = bands[r][c] if bands else "low"
            band_note = f" ({escape(band.replace('_', ' '))} band)" if bands else ""
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" '
                f'fill="{band_fill.get(band, "#eeeeee")}" stroke="#8a8a8a" stroke-width="0.5">'
                f"<title>{escape(row_axis)} {escape(row_label)}, {escape(column_axis)} {escape(column_label)}: "
                f"{value}{band_note}</title></rect>"
            )
            weight = ' font-weight="bold"' if value else ""
            body.append(
                f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 5:.1f}" text-anchor="middle" '
                f'font-size="14"{weight}>{value}</text>'
            )
            if value:
                parts.append(f"{row_label} {row_axis.lower()} and {column_label} {column_axis.lower()}: {value}")
    for c, column_label in enumerate(column_labels):
        x = label_width + c * cell_w + cell_w / 2 - 1
        body.append(f'<text x="{x:.1f}" y="{height - 24}" text-anchor="middle">{escape(column_label)}</text>')
    body.append(
        f'<text x="{label_width + (width - label_width) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'font-style="italic">{escape(column_axis)}</text>'
    )
    desc = f"Rows: {row_axis}; columns: {column_axis}. " + ("; ".join(parts) if parts else "No entries.")
    return _svg(width, height, title, desc, body)
