"""Performance and fairness of one window, from the confusion counts its sketch holds.

Performance: accuracy, TPR (``recall``), FPR, FNR, precision and selection rate are proportions, each with a 95%
Wilson score interval; balanced accuracy and F1 are not, and get a percentile interval from a multinomial bootstrap
of the four counts. A rate whose denominator is empty (FPR without negatives) has no value (None), not 0.

Fairness: per grouping (each sensitive attribute and each intersection, as keyed in the sketch) every count metric
per group and every between-group fairness metric, computed by the evaluation engine's own functions
(``workers.engine.evaluation.metrics``, checked against fairlearn) so a window is comparable with the evaluation
that approved the model; intervals as ``workers.engine.evaluation.evaluate`` draws them: a multinomial bootstrap of
the (group, label, prediction) cell counts, percentile intervals over the resamples in which the metric is defined.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from workers.engine.evaluation.metrics import COUNT_METRICS, fairness_from_metrics, metrics_from_counts
from workers.engine.monitoring.columns import MISSING_GROUP, category_text
from workers.engine.monitoring.sketch import ALL, group_key, parse_group_key

Z_95 = 1.959963984540054
# Proportions as (numerator cells, denominator cells) over the confusion counts [tn, fp, fn, tp].
PROPORTIONS = {
    "selection_rate": ((1, 3), (0, 1, 2, 3)),
    "accuracy": ((0, 3), (0, 1, 2, 3)),
    "precision": ((3,), (1, 3)),
    "recall": ((3,), (2, 3)),
    "false_positive_rate": ((1,), (0, 1)),
    "false_negative_rate": ((2,), (2, 3)),
}
# For performance, which way is worse; selection rate is neither better nor worse, only different.
LOWER_IS_WORSE = {"accuracy", "balanced_accuracy", "precision", "recall", "f1"}
HIGHER_IS_WORSE = {"false_positive_rate", "false_negative_rate"}
PERFORMANCE_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", *sorted(HIGHER_IS_WORSE))
# The per-group rates each between-group fairness metric is made of.
COMPONENTS = {
    "demographic_parity_difference": ("selection_rate",),
    "demographic_parity_ratio": ("selection_rate",),
    "equalized_odds_difference": ("recall", "false_positive_rate"),
    "equalized_odds_ratio": ("recall", "false_positive_rate"),
    "equal_opportunity_difference": ("recall",),
    "predictive_parity_difference": ("precision",),
    "false_positive_rate_difference": ("false_positive_rate",),
    "false_negative_rate_difference": ("false_negative_rate",),
}


def wilson_interval(successes: float, trials: float, z: float = Z_95) -> list[float] | None:
    """The Wilson score interval of a proportion; None without trials. (Also the counterfactual probe's.)"""
    if trials <= 0:
        return None
    share = successes / trials
    scale = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / scale
    # At no or all successes the bound is exactly 0 or 1; the formula leaves float dust there.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return [float(low), float(high)]


def percentile_interval(samples: np.ndarray) -> list[float] | None:
    """The 95% percentile interval over the resamples where the metric is defined."""
    finite = np.asarray(samples, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def _value(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def denominator(metric: str, counts: np.ndarray) -> float:
    """Rows a rate is taken over (all rows for balanced accuracy and F1)."""
    cells = PROPORTIONS.get(metric, (None, (0, 1, 2, 3)))[1]
    return float(np.asarray(counts, dtype=float)[..., list(cells)].sum(axis=-1))


def performance_metrics(counts: Any, *, resamples: int = 200, seed: int = 0) -> dict[str, dict[str, Any]]:
    """For [tn, fp, fn, tp]: ``{metric: {"value", "interval", "rows"}}`` for every count metric of the evaluation
    engine; ``rows`` is the rate's denominator."""
    counts = confusion_array(counts)
    values = metrics_from_counts(counts.reshape(1, 4))
    total = counts.sum()
    bootstrap = None
    if total > 0:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(int(total), counts / total, size=resamples).astype(float)
        bootstrap = metrics_from_counts(draws)
    out: dict[str, dict[str, Any]] = {}
    for metric in COUNT_METRICS:
        rows = denominator(metric, counts)
        if rows == 0:
            out[metric] = {"value": None, "interval": None, "rows": 0}
            continue
        if metric in PROPORTIONS:
            numerator = counts[list(PROPORTIONS[metric][0])].sum()
            interval = wilson_interval(numerator, rows)
        else:
            interval = percentile_interval(bootstrap[metric]) if bootstrap is not None else None
        out[metric] = {"value": _value(values[metric][0]), "interval": interval, "rows": int(rows)}
    return out


def confusion_array(counts: Any) -> np.ndarray:
    """[tn, fp, fn, tp] from a sketch's array or its stored ``{"tn", "fp", "fn", "tp"}``."""
    if isinstance(counts, dict):
        return np.array([counts["tn"], counts["fp"], counts["fn"], counts["tp"]], dtype=float)
    return np.asarray(counts, dtype=float)


def _groupings(confusion: dict[str, Any]) -> dict[tuple[str, ...], list[str]]:
    """Group keys of the sketch per grouping (its sorted attributes)."""
    groupings: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for key in sorted(confusion):
        if key != ALL:
            groupings[tuple(name for name, _ in parse_group_key(key))].append(key)
    return dict(groupings)


def window_fairness(
    confusion: dict[str, Any], *, min_group_size: int, resamples: int = 200, seed: int = 0
) -> list[dict[str, Any]]:
    """Per grouping: ``{"name": "race|sex", "attributes": [...], "judged_groups": int, "groups": [{"key",
    "values": {attribute: value}, "count", "too_small", <metric>: value, "<metric>_ci": [lo, hi] | None,
    "<metric>_rows": denominator}], "fairness": {<fairness metric>: {"value", "ci"}}}``. Values follow the
    evaluation engine (and fairlearn): a rate over an empty denominator is 0 there; ``<metric>_rows`` says when."""
    rng = np.random.default_rng(seed)
    out = []
    for attributes, keys in _groupings(confusion).items():
        counts = np.array([confusion_array(confusion[key]) for key in keys])
        per_group = metrics_from_counts(counts)
        judged = per_group["count"] >= min_group_size
        fairness = fairness_from_metrics(per_group, judged)
        total = counts.sum()
        cells = counts.reshape(-1)
        draws = rng.multinomial(int(total), cells / total, size=resamples).reshape(resamples, len(keys), 4)
        boot_group = metrics_from_counts(draws.astype(float))
        boot_fairness = fairness_from_metrics(boot_group, judged)
        groups = []
        for index, key in enumerate(keys):
            row: dict[str, Any] = {
                "key": key,
                "values": dict(parse_group_key(key)),
                "count": int(per_group["count"][index]),
                "too_small": not bool(judged[index]),
            }
            for metric in COUNT_METRICS:
                row[metric] = _value(per_group[metric][index])
                row[f"{metric}_ci"] = percentile_interval(boot_group[metric][:, index])
                row[f"{metric}_rows"] = int(denominator(metric, counts[index]))
            groups.append(row)
        out.append(
            {
                "name": "|".join(attributes),
                "attributes": list(attributes),
                "judged_groups": int(judged.sum()),
                "groups": groups,
                "fairness": {
                    metric: {"value": _value(float(fairness[metric])), "ci": percentile_interval(boot_fairness[metric])}
                    for metric in fairness
                },
            }
        )
    return out


def baseline_key(attributes: list[str], values: list[Any]) -> str:
    """The sketch's key of an evaluation group (values compared as text; None is the missing group)."""
    return group_key(
        [
            (attribute, category_text(value) or MISSING_GROUP)
            for attribute, value in zip(attributes, values, strict=True)
        ]
    )


def baseline_by_grouping(baseline: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    """The evaluation's groupings keyed like the window's: sorted attributes -> {"fairness", "groups": {key: row}}."""
    out = {}
    for grouping in baseline.get("groupings", []):
        attributes = list(grouping["attributes"])
        out[tuple(sorted(attributes))] = {
            "fairness": grouping.get("fairness", {}),
            "groups": {baseline_key(attributes, row["values"]): row for row in grouping["groups"]},
        }
    return out
