"""Group-specific (randomised) thresholds: post-processing as fairlearn 0.15's ``ThresholdOptimizer(prefit=True)``
(Hardt, Price and Srebro 2016), reproduced step for step on numpy so the fitted thresholds are fairlearn's.

Per group, every threshold between two distinct scores is a point (constraint metric x, objective y) (fairlearn's
``_calculate_tradeoff_points``, threshold = midpoint of neighbouring distinct scores, +inf and -inf at the ends); the
upper convex hull of those points is interpolated on a grid of ``grid_size + 1`` constraint values in [0, 1]. A grid
point between two hull vertices is reached by randomising: with probability ``p_high`` judge the row by the higher
threshold, otherwise by the lower one.
- demographic parity / TPR parity / FPR parity: every group takes the same grid value x; the chosen x maximises the
  objective averaged over groups weighted by their share of rows.
- equalized odds: x is the false positive rate; at each x the groups' ROC hulls are cut down to the lowest true
  positive rate (a group above it mixes in, with probability ``p_ignore``, a constant positive rate x); the chosen x
  maximises the objective.
A row is predicted positive with probability
    (1 - p_ignore) * (p_high * [score > threshold_high] + (1 - p_high) * [score > threshold_low])
    + p_ignore * prediction_constant.
JSON: an infinite threshold is written "inf" / "-inf" (JSON has no infinity and PostgreSQL refuses the token);
``float()`` reads both.

Groups are keyed by their text (``str``; a missing value is the group "(missing)", where fairlearn would drop it).
A group unseen at fit time has no fitted thresholds: it gets the group-blind threshold that maximises the objective
on all fitted rows (``overall``), deterministic, and no fairness constraint (there was nothing to constrain it by).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

ENGINE_VERSION = "attest-thresholds-1 (fairlearn 0.15 ThresholdOptimizer)"
MISSING_GROUP = "(missing)"
CONSTRAINT_METRIC = {
    "demographic_parity": "selection_rate",
    "true_positive_rate_parity": "true_positive_rate",
    "false_positive_rate_parity": "false_positive_rate",
    "equalized_odds": "false_positive_rate",
}
OBJECTIVES = ("accuracy_score", "balanced_accuracy_score")


class Counts:
    """Confusion counts (arrays or scalars), with fairlearn's derived fields."""

    def __init__(self, *, true_positives: Any, false_positives: Any, true_negatives: Any, false_negatives: Any):
        self.true_positives = true_positives
        self.false_positives = false_positives
        self.true_negatives = true_negatives
        self.false_negatives = false_negatives
        self.predicted_positives = true_positives + false_positives
        self.positives = true_positives + false_negatives
        self.negatives = true_negatives + false_positives
        self.n = true_positives + true_negatives + false_positives + false_negatives


# The same arithmetic, in the same order, as fairlearn's METRIC_DICT, so ties break the same way.
METRICS: dict[str, Callable[[Counts], Any]] = {
    "selection_rate": lambda x: x.predicted_positives / x.n,
    "false_positive_rate": lambda x: x.false_positives / x.negatives,
    "true_positive_rate": lambda x: x.true_positives / x.positives,
    "accuracy_score": lambda x: (x.true_positives + x.true_negatives) / x.n,
    "balanced_accuracy_score": lambda x: 0.5 * x.true_positives / x.positives + 0.5 * x.true_negatives / x.negatives,
}


def group_keys(groups: Any) -> np.ndarray:
    """Each row's group as text; missing values (None, NaN, pd.NA) are one group."""
    values = pd.Series(np.asarray(groups, dtype=object))
    return np.where(values.isna().to_numpy(), MISSING_GROUP, values.astype(str).to_numpy()).astype(object)


def _tradeoff_points(scores: np.ndarray, labels: np.ndarray, x_metric: str, y_metric: str, group: str):
    """(x, y, threshold) for every threshold, sorted by x then y (fairlearn's ``_calculate_tradeoff_points``)."""
    n_positive = int(labels.sum())
    n_negative = len(labels) - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError(
            f"Group {group!r} has only {'negative' if n_positive == 0 else 'positive'} labels: thresholds cannot be "
            "fitted for it (fairlearn refuses it too); merge it with another group or leave it out."
        )
    distinct, inverse = np.unique(-scores, return_inverse=True)  # distinct scores, descending
    distinct = -distinct
    positives = np.bincount(inverse, weights=labels, minlength=len(distinct)).astype(np.int64)
    totals = np.bincount(inverse, minlength=len(distinct))
    cum_tp = np.concatenate([[0], np.cumsum(positives)])
    cum_fp = np.concatenate([[0], np.cumsum(totals - positives)])
    following = np.concatenate([distinct[1:], [-np.inf]])
    thresholds = np.concatenate([[np.inf], (distinct + following) / 2])
    counts = Counts(
        true_positives=cum_tp,
        false_positives=cum_fp,
        true_negatives=n_negative - cum_fp,
        false_negatives=n_positive - cum_tp,
    )
    x = np.asarray(METRICS[x_metric](counts), dtype=float)
    y = np.asarray(METRICS[y_metric](counts), dtype=float)
    order = np.lexsort((y, x))
    return x[order], y[order], thresholds[order]


def _upper_hull(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Andrew's monotone chain on points sorted by x then y, dropping a middle point on or below the chord (as
    fairlearn's ``_filter_points_to_get_convex_hull``)."""
    kept: list[int] = []
    for i in range(len(x)):
        while len(kept) >= 2:
            r0, r1 = kept[-2], kept[-1]
            if (y[r1] - y[r0]) * (x[i] - x[r0]) <= (y[i] - y[r0]) * (x[r1] - x[r0]):
                kept.pop()
            else:
                break
        kept.append(i)
    return kept


def _interpolate(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    """The hull's y on the grid and the two vertices (indices) and weight p0 of each grid point
    (fairlearn's ``_interpolate_curve`` with its ``_get_interpolation_indices``)."""
    index = np.searchsorted(x, grid, side="right") - 1
    index[1:] = np.where(grid[1:] == x[index[1:]], index[1:] - 1, index[1:])
    p0 = (x[index + 1] - grid) / (x[index + 1] - x[index])
    p1 = 1 - p0
    return {"y": p0 * y[index] + p1 * y[index + 1], "p0": p0, "p1": p1, "i0": index, "i1": index + 1}


def _curve(scores: np.ndarray, labels: np.ndarray, x_metric: str, y_metric: str, grid: np.ndarray, group: str):
    x, y, thresholds = _tradeoff_points(scores, labels, x_metric, y_metric, group)
    hull = _upper_hull(x, y)
    hx, hy, ht = x[hull], y[hull], thresholds[hull]
    curve = _interpolate(hx, hy, grid)
    curve["threshold0"] = ht[curve["i0"]]
    curve["threshold1"] = ht[curve["i1"]]
    return curve


def _json_threshold(value: float) -> float | str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def _best_single_threshold(scores: np.ndarray, labels: np.ndarray, objective: str) -> dict[str, Any]:
    """The group-blind fallback: among all thresholds (highest first), the first that maximises the objective."""
    x, y, thresholds = _tradeoff_points(scores, labels, "selection_rate", objective, "all rows")
    # Sorted by selection rate, i.e. from the highest threshold down; argmax keeps the first (highest) of ties.
    best = int(np.argmax(y))
    return {"threshold": _json_threshold(float(thresholds[best])), "objective_value": float(y[best])}


def fit_group_thresholds(
    y_true: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    *,
    constraint: str,
    objective: str = "accuracy_score",
    grid_size: int = 1000,
) -> dict[str, Any]:
    """Per-group randomised thresholds maximising ``objective`` under ``constraint``; see the module docstring.

    ``y_true`` are 0/1 labels, ``scores`` the model's positive-class scores (probabilities or logits), ``groups``
    one sensitive value (or intersection label) per row. Fit on rows the model did not train on.
    """
    if constraint not in CONSTRAINT_METRIC:
        raise ValueError(f"unknown constraint {constraint!r}; choose one of {', '.join(CONSTRAINT_METRIC)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    y_true = np.asarray(y_true)
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("Labels other than 0/1 were provided.")
    y_true = y_true.astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    keys = group_keys(groups)
    if not (len(y_true) == len(scores) == len(keys)) or len(y_true) == 0:
        raise ValueError("y_true, scores and groups need the same, non-zero length")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    n = len(y_true)
    grid = np.linspace(0, 1, grid_size + 1)
    names = sorted(set(keys.tolist()))  # the order pandas' groupby gives fairlearn
    members = {name: keys == name for name in names}
    x_metric = CONSTRAINT_METRIC[constraint]
    y_metric = "true_positive_rate" if constraint == "equalized_odds" else objective
    curves = {name: _curve(scores[m], y_true[m], x_metric, y_metric, grid, name) for name, m in members.items()}
    fitted_groups: dict[str, dict[str, Any]] = {}
    if constraint != "equalized_odds":
        overall = 0 * grid
        for name in names:
            # Added group by group in order, as pandas sums fairlearn's columns, so the argmax ties the same way.
            overall = overall + (int(members[name].sum()) / n) * curves[name]["y"]
        best = int(np.argmax(overall))
        x_best, y_best, ignore = float(grid[best]), float(overall[best]), dict.fromkeys(names, 0.0)
        constant = None
    else:
        y_min = np.min(np.vstack([curves[name]["y"] for name in names]), axis=0)
        n_positive = int(y_true.sum())
        n_negative = n - n_positive
        counts = Counts(
            false_positives=n_negative * grid,
            true_negatives=n_negative * (1.0 - grid),
            true_positives=n_positive * y_min,
            false_negatives=n_positive * (1.0 - y_min),
        )
        values = np.around(METRICS[objective](counts), 15)
        best = int(np.argmax(values))
        x_best, y_best = float(grid[best]), float(y_min[best])
        ignore = {}
        for name in names:
            y_group, x_group = curves[name]["y"][best], grid[best]
            # Mix in the constant rate x_best with the probability that brings this group's TPR down to y_best.
            ignore[name] = 0.0 if y_group == x_group else float((y_group - y_best) / (y_group - x_group))
        constant = x_best
    for name in names:
        curve = curves[name]
        high, low = float(curve["threshold0"][best]), float(curve["threshold1"][best])
        p_high = float(curve["p0"][best])
        # Along the hull thresholds fall as the constraint metric rises, so this should not happen; if it did, the
        # names would still say which threshold is which.
        if high < low:
            high, low, p_high = low, high, float(curve["p1"][best])
        fitted_groups[name] = {
            "threshold_high": _json_threshold(high),
            "threshold_low": _json_threshold(low),
            "p_high": p_high,
            "p_ignore": ignore[name],
            "prediction_constant": constant,
            "count": int(members[name].sum()),
        }
    return {
        "engine_version": ENGINE_VERSION,
        "constraint": constraint,
        "objective": objective,
        "grid_size": grid_size,
        # The common value of the constraint metric the groups were brought to (the FPR for equalized odds, whose
        # common TPR is ``common_true_positive_rate``), and the objective there (simple constraints only).
        "constraint_value": x_best,
        "objective_value": y_best if constraint != "equalized_odds" else float(values[best]),
        **({"common_true_positive_rate": y_best} if constraint == "equalized_odds" else {}),
        "groups": fitted_groups,
        "overall": _best_single_threshold(scores, y_true, objective),
        "fallback": "a group unseen at fit time is judged by the overall (group-blind) threshold",
    }


def positive_probability(scores: np.ndarray, groups: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
    """Each row's probability of a positive prediction (fairlearn's ``_pmf_predict`` column 1)."""
    scores = np.asarray(scores, dtype=np.float64)
    keys = group_keys(groups)
    fallback = float(fitted["overall"]["threshold"])
    out = (scores > fallback).astype(np.float64)
    for name, g in fitted["groups"].items():
        rows = keys == name
        if not rows.any():
            continue
        s = scores[rows]
        p_high = float(g["p_high"])
        # Same expression as fairlearn's InterpolatedThresholder: p0 * op0(s) + p1 * op1(s), p1 = 1 - p0.
        mixed = p_high * (s > float(g["threshold_high"])) + (1 - p_high) * (s > float(g["threshold_low"]))
        p_ignore = float(g.get("p_ignore") or 0.0)
        if g.get("prediction_constant") is not None and p_ignore:
            mixed = p_ignore * float(g["prediction_constant"]) + (1 - p_ignore) * mixed
        out[rows] = mixed
    return out


def apply_group_thresholds(
    scores: np.ndarray, groups: np.ndarray, fitted: dict[str, Any], rng: np.random.Generator
) -> np.ndarray:
    """0/1 predictions: each row is positive with its ``positive_probability`` (one uniform draw per row).

    A row with probability 0 or 1 (no randomisation) gets the same prediction whatever ``rng`` gives.
    """
    probability = positive_probability(scores, groups, fitted)
    return (rng.random(len(probability)) < probability).astype(np.int64)
