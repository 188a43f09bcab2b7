"""The monitoring figures of a deployment, built once from its evaluated windows for the deployment page and the
post-market monitoring report alike (one renderer, the same numbers): a chart per figure and the table of every value
beside it, so a screen reader, a printed page and a regulator's tools read what the chart shows.

A window's result for a monitor is ``{"monitor", "status", "value", "threshold", "interval", "rows", ...}`` (see
``workers.engine.monitoring.monitors.evaluate_window``). "insufficient" is never drawn as a value: the window is a gap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from apps.core import charts
from apps.usecases.vocab import metric_label

INSUFFICIENT = "insufficient"
WARN_COLOR, ALERT_COLOR = "#b26a00", "#a4262c"
# The words a table cell shows for a result's status (a pass shows the value alone).
STATUS_WORDS = {"warn": "warning", "fail": "alert", INSUFFICIENT: "insufficient data"}


@dataclass
class Figure:
    """One chart and its data table."""

    key: str
    title: str
    svg: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    family: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def window_label(window: Any) -> str:
    return f"{window.starts_at:%d %b}"


def window_period(window: Any) -> str:
    return f"{window.starts_at:%d %b %Y} to {window.ends_at:%d %b %Y}"


def parse_monitor(monitor: str) -> tuple[str, str, str]:
    """``"fairness:false_positive_rate:sex=Female"`` -> (family, measure, subject); missing parts are ""."""
    parts = monitor.split(":", 2)
    parts += [""] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def cell(result: dict[str, Any] | None, *, with_limit: bool = False) -> str:
    """A result as a table shows it: the value with its interval, and the status in words unless it passed."""
    if result is None:
        return "–"
    status = result.get("status")
    if status == INSUFFICIENT:
        return "insufficient data"
    text = fmt(result.get("value"))
    interval = result.get("interval")
    if interval and len(interval) == 2 and interval[0] is not None and interval[1] is not None:
        text += f" [{fmt(interval[0])}, {fmt(interval[1])}]"
    words = [STATUS_WORDS[status]] if status in STATUS_WORDS else []
    if with_limit and _number(result.get("threshold")):
        words.append(f"limit {fmt(result['threshold'])}")
    if words:
        text += f" ({', '.join(words)})"
    return text


def worst_status(results: Iterable[dict[str, Any]]) -> str:
    """The worst status among a window's results: fail > warn > insufficient > pass ("" when there are none)."""
    order = {"fail": 3, "warn": 2, INSUFFICIENT: 1, "pass": 0}
    worst, rank = "", -1
    for result in results:
        status = result.get("status", "")
        if order.get(status, -1) > rank:
            worst, rank = status, order.get(status, -1)
    return worst


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plan_rules(plan: dict[str, Any], family: str) -> list[charts.Rule]:
    """The plan's warn and alert levels of a drift family (PSI) as horizontal lines."""
    settings = ((plan or {}).get("monitors") or {}).get(family) or {}
    rules = []
    for key, label, color in (("warn", "warn", WARN_COLOR), ("alert", "alert", ALERT_COLOR)):
        value = settings.get(f"psi_{key}", settings.get(key))
        if _number(value):
            rules.append(charts.Rule(label, float(value), color))
    return rules


def _limit_rules(
    named_monitors: list[tuple[str, str]], by_window: list[dict[str, dict[str, Any]]]
) -> list[charts.Rule]:
    """Each series' limit (its evaluation value moved by the plan's allowance), drawn in the series' colour when it is
    the same in every window and there are few enough series to tell the lines apart."""
    if len(named_monitors) > 4:
        return []
    rules = []
    for index, (name, monitor) in enumerate(named_monitors):
        limits = {
            r[monitor].get("threshold") for r in by_window if monitor in r and _number(r[monitor].get("threshold"))
        }
        if len(limits) == 1:
            label = "limit" if len(named_monitors) == 1 else f"limit {name}"
            rules.append(charts.Rule(label, float(limits.pop()), charts.PALETTE[index % len(charts.PALETTE)]))
    return rules


def _series(
    name: str, monitor: str, by_window: list[dict[str, dict[str, Any]]], *, bands: bool = False
) -> charts.Series:
    values: list[float | None] = []
    lows: list[float | None] = []
    highs: list[float | None] = []
    for results in by_window:
        result = results.get(monitor)
        if result is None or result.get("status") == INSUFFICIENT or result.get("value") is None:
            values.append(None)
            lows.append(None)
            highs.append(None)
            continue
        values.append(float(result["value"]))
        interval = result.get("interval") or [None, None]
        lows.append(None if interval[0] is None else float(interval[0]))
        highs.append(None if interval[1] is None else float(interval[1]))
    if bands and any(v is not None for v in lows):
        return charts.Series(name, tuple(values), tuple(lows), tuple(highs))
    return charts.Series(name, tuple(values))


def _gaps(monitors: list[str], by_window: list[dict[str, dict[str, Any]]]) -> set[int]:
    """Windows in which every monitor of a chart had too little data: shaded, never drawn as zero."""
    gaps = set()
    for index, results in enumerate(by_window):
        statuses = [results[m].get("status") for m in monitors if m in results]
        if statuses and all(status == INSUFFICIENT for status in statuses):
            gaps.add(index)
    return gaps


@dataclass(frozen=True)
class Mark:
    """An alert as a chart marks it: on the chart of its monitor, in the window where it opened."""

    monitor: str
    window_id: Any
    title: str


def first_window(alert: Any) -> dict[str, Any]:
    """The window an alert opened in, as its history keeps it (``{"id", "starts_at", ...}``; {} when not kept):
    ``alert.window`` moves on to the newest window in which the monitor failed again."""
    history = (alert.detail or {}).get("history") or []
    return ((history[0] or {}).get("window") or {}) if history else {}


def opened_in(alert: Any) -> Any:
    """The id of the window in which an alert opened (``alert.window_id`` when its history does not say)."""
    first = first_window(alert)
    if first.get("id"):
        try:
            return uuid.UUID(str(first["id"]))
        except ValueError:
            return alert.window_id
    return alert.window_id


def _markers(monitors: list[str], marks: list[Mark], window_index: dict[Any, int]) -> dict[int, str]:
    markers: dict[int, list[str]] = {}
    for mark in marks:
        if mark.monitor in monitors and mark.window_id in window_index:
            markers.setdefault(window_index[mark.window_id], []).append(f"alert opened: {mark.title}")
    return {index: "; ".join(texts) for index, texts in markers.items()}


def _figure(
    *,
    key: str,
    title: str,
    y_label: str,
    family: str,
    named_monitors: list[tuple[str, str]],
    windows: list[Any],
    by_window: list[dict[str, dict[str, Any]]],
    plan: dict[str, Any],
    marks: list[Mark],
    window_index: dict[Any, int],
    bands: bool = False,
    limits: bool = False,
    min_value: float | None = 0.0,
    ceiling: float | None = None,
    width: int = 720,
) -> Figure:
    monitors = [monitor for _name, monitor in named_monitors]
    labels = [window_label(w) for w in windows]
    gaps = _gaps(monitors, by_window)
    series = [_series(name, monitor, by_window, bands=bands) for name, monitor in named_monitors]
    rules = _limit_rules(named_monitors, by_window) if limits else _plan_rules(plan, family)
    max_value = None
    if ceiling is not None:
        # Scaled to what is drawn (a false-positive rate of 0.1 is not a flat line at the bottom of 0..1), never past
        # what the measure can reach.
        drawn = [v for item in series for v in (*item.values, *item.high) if v is not None] + [r.value for r in rules]
        max_value = min(ceiling, max(drawn) * 1.15) if drawn and max(drawn) > 0 else ceiling
    svg = charts.time_series(
        labels,
        series,
        title=title,
        y_label=y_label,
        rules=rules,
        gaps=gaps,
        markers=_markers(monitors, marks, window_index),
        min_value=min_value,
        max_value=max_value,
        width=width,
    )
    rows = [
        [window_period(window), fmt(window.rows), *[cell(results_of.get(m), with_limit=limits) for m in monitors]]
        for window, results_of in zip(windows, by_window, strict=True)
    ]
    return Figure(
        key=key,
        title=title,
        svg=svg,
        columns=["Window", "Rows", *[name for name, _m in named_monitors]],
        rows=rows,
        family=family,
    )


def _ordered(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def monitoring_figures(*, plan: dict[str, Any], windows: list[Any], alerts: list[Any]) -> list[Figure]:
    """Every figure of the evaluated ``windows`` (oldest first): PSI per feature, prediction drift, each performance
    metric and each fairness metric per group, with the ``alerts`` opened in those windows marked."""
    from workers.engine.monitoring.sketch import parse_group_key  # pure, no torch; loaded when a page draws charts

    windows = [w for w in windows if w.results]
    if not windows:
        return []
    by_window = [{r["monitor"]: r for r in (w.results or []) if r.get("monitor")} for w in windows]
    window_index = {w.id: index for index, w in enumerate(windows)}
    monitors = _ordered(m for results in by_window for m in results)
    marks = [Mark(a.monitor, opened_in(a), a.title) for a in alerts]
    common = {"windows": windows, "by_window": by_window, "plan": plan, "window_index": window_index}
    figures: list[Figure] = []
    features = _ordered(parse_monitor(m)[2] for m in monitors if m.startswith("data_drift:psi:"))
    for feature in features:
        monitor = f"data_drift:psi:{feature}"
        # A drift alert on another statistic of the feature (KS, Wasserstein...) marks its PSI chart too.
        feature_marks = [
            Mark(monitor, m.window_id, m.title)
            for m in marks
            if parse_monitor(m.monitor)[0] == "data_drift" and parse_monitor(m.monitor)[2] == feature
        ]
        figures.append(
            _figure(
                key=f"drift-{feature}",
                title=f"Data drift of {feature} (PSI against the training reference)",
                y_label="PSI",
                family="data_drift",
                named_monitors=[(f"PSI {feature}", monitor)],
                marks=feature_marks,
                width=560,
                **common,
            )
        )
    prediction = [m for m in monitors if m.startswith("prediction_drift:")]
    if prediction:
        figures.append(
            _figure(
                key="prediction-drift",
                title="Prediction drift (against the training reference)",
                y_label="PSI",
                family="prediction_drift",
                named_monitors=[(parse_monitor(m)[1].upper() or m, m) for m in prediction],
                marks=marks,
                **common,
            )
        )
    performance = _ordered(parse_monitor(m)[1] for m in monitors if m.startswith("performance:"))
    for measure in performance:
        named = [
            (parse_monitor(m)[2] or "overall", m) for m in monitors if parse_monitor(m)[:2] == ("performance", measure)
        ]
        figures.append(
            _figure(
                key=f"performance-{measure}",
                title=f"Performance: {_measure_label(measure)} per window (95% intervals)",
                y_label=_measure_label(measure),
                family="performance",
                named_monitors=named,
                bands=True,
                limits=True,
                ceiling=1.0 if _bounded(measure) else None,
                marks=marks,
                **common,
            )
        )
    # Fairness: each gated metric across each grouping, then each rate it is made of per group of each grouping
    # (one chart per grouping, so a chart's lines are the groups of one attribute or intersection).
    charts_by_key: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for monitor in monitors:
        family, measure, subject = parse_monitor(monitor)
        if family != "fairness" or not subject:
            continue
        grouping = "" if "=" not in subject else "|".join(name for name, _value in parse_group_key(subject))
        charts_by_key.setdefault((measure, grouping), []).append((subject, monitor))
    for (measure, grouping), named in charts_by_key.items():
        label = _measure_label(measure)
        title = f"Fairness: {label} by {grouping.replace('|', ' x ')}" if grouping else f"Fairness: {label}"
        figures.append(
            _figure(
                key=f"fairness-{measure}" + (f"-{grouping.replace('|', '-')}" if grouping else ""),
                title=f"{title} per window (95% intervals)",
                y_label=label,
                family="fairness",
                named_monitors=named,
                bands=True,
                limits=True,
                ceiling=1.0 if _bounded(measure) else None,
                marks=marks,
                **common,
            )
        )
    return figures


def _measure_label(measure: str) -> str:
    label = metric_label(measure)
    return label if label and label != measure else measure.replace("_", " ").capitalize()


def _bounded(measure: str) -> bool:
    """Rates and accuracies live in [0, 1]; differences and ratios of them may be drawn on their own scale."""
    return not any(word in measure for word in ("difference", "ratio", "error", "psi"))
