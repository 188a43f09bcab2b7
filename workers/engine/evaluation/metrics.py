"""Performance and fairness metrics per group, all derived from per-group confusion counts.

Binary classification, positive class = 1. Definitions follow fairlearn (``MetricFrame`` with scikit-learn metrics,
``zero_division=0`` where a per-group denominator is empty) so the numbers can be checked against it:
- selection rate = (tp + fp) / n; TPR (recall) = tp / (tp + fn); FPR = fp / (fp + tn); FNR = fn / (tp + fn);
  precision = tp / (tp + fp); accuracy; balanced accuracy = (TPR + TNR) / 2; F1 = 2 tp / (2 tp + fp + fn).
- demographic parity difference / ratio: max - min / min / max of selection rates across groups;
  equalized odds difference = max(TPR difference, FPR difference); ratio = min(TPR ratio, FPR ratio);
  equal opportunity difference = TPR difference; predictive parity difference = precision difference;
  false positive / negative rate differences.
- a between-group ratio of 0/0 (no judged group predicted positive; no judged group with a false positive) is
  undefined (NaN), as fairlearn's ``MetricFrame.ratio``; so is the equalized odds ratio when either of its ratios is
  (fairlearn's ``equalized_odds_ratio`` takes Python's ``min`` over the pair, which silently keeps the TPR ratio when
  only the FPR ratio is NaN; we do not). ``undefined_reason`` says why in words.
- calibration error: expected calibration error over 10 equal-width probability bins (sum over bins of
  |mean predicted - observed positive rate| weighted by the bin's share of rows).
Groups smaller than the policy's minimum size are reported but excluded from the fairness comparisons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COUNT_METRICS = (
    "selection_rate",
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "false_positive_rate",
    "false_negative_rate",
)
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "predictive_parity_difference",
    "false_positive_rate_difference",
    "false_negative_rate_difference",
)


def confusion_counts(
    y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, groups: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Array (groups, 4) of [tn, fp, fn, tp] per group, with one vectorised bincount."""
    cell = codes * 4 + y_true.astype(np.int64) * 2 + y_pred.astype(np.int64)
    return np.bincount(cell, weights=weights, minlength=groups * 4).reshape(groups, 4).astype(float)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def metrics_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every count-based metric, for each row of ``counts`` (works on any leading shape, e.g. bootstrap x groups).
    A group with no rows (absent from a bootstrap resample) has no rates: every metric is NaN there, as fairlearn's
    bootstrap leaves a group missing from a resample out of its quantiles."""
    tn, fp, fn, tp = counts[..., 0], counts[..., 1], counts[..., 2], counts[..., 3]
    n = tn + fp + fn + tp
    tpr = _ratio(tp, tp + fn)
    tnr = _ratio(tn, tn + fp)
    metrics = {
        "count": n,
        "selection_rate": _ratio(tp + fp, n),
        "accuracy": _ratio(tp + tn, n),
        # As scikit-learn: with one class absent from y_true, the mean is over the classes present.
        "balanced_accuracy": np.where((tp + fn > 0) & (tn + fp > 0), (tpr + tnr) / 2, np.where(tp + fn > 0, tpr, tnr)),
        "precision": _ratio(tp, tp + fp),
        "recall": tpr,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "false_positive_rate": _ratio(fp, fp + tn),
        "false_negative_rate": _ratio(fn, fn + tp),
    }
    absent = n == 0
    if absent.any():
        for name in COUNT_METRICS:
            metrics[name] = np.where(absent, np.nan, metrics[name])
    return metrics


def fairness_from_metrics(per_group: dict[str, np.ndarray], judged: np.ndarray) -> dict[str, np.ndarray]:
    """Between-group fairness metrics over the judged groups (last axis = groups)."""

    def spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A NaN (a group absent from a bootstrap resample) propagates: the comparison is undefined there.
        chosen = values[..., judged]
        low, high = chosen.min(axis=-1), chosen.max(axis=-1)
        with np.errstate(invalid="ignore"):
            ratio = np.where(high > 0, low / np.where(high > 0, high, 1), np.nan)  # 0/0 (or NaN): undefined
        return high - low, ratio

    if judged.sum() < 2:
        nan = np.full(per_group["selection_rate"].shape[:-1], np.nan)
        return {name: nan for name in FAIRNESS_METRICS}
    dp_diff, dp_ratio = spread(per_group["selection_rate"])
    tpr_diff, tpr_ratio = spread(per_group["recall"])
    fpr_diff, fpr_ratio = spread(per_group["false_positive_rate"])
    fnr_diff, _ = spread(per_group["false_negative_rate"])
    ppv_diff, _ = spread(per_group["precision"])
    return {
        "demographic_parity_difference": dp_diff,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": np.maximum(tpr_diff, fpr_diff),
        "equalized_odds_ratio": np.minimum(tpr_ratio, fpr_ratio),  # NaN when either ratio is
        "equal_opportunity_difference": tpr_diff,
        "predictive_parity_difference": ppv_diff,
        "false_positive_rate_difference": fpr_diff,
        "false_negative_rate_difference": fnr_diff,
    }


RATIO_PARTS = {
    "demographic_parity_ratio": (("selection_rate", "no judged group has a positive prediction"),),
    "equalized_odds_ratio": (
        ("recall", "no judged group has a true positive"),
        ("false_positive_rate", "no judged group has a false positive"),
    ),
}


def undefined_reason(metric: str, per_group: dict[str, np.ndarray], judged: np.ndarray, min_group_size: int) -> str:
    """Why a between-group metric has no value (its point estimate is NaN)."""
    if judged.sum() < 2:
        return f"fewer than two groups have at least {min_group_size} rows, so there is nothing to compare"
    for rate, why in RATIO_PARTS.get(metric, ()):
        if not (per_group[rate][judged] > 0).any():
            return f"{why}: the ratio is 0/0"
    return "undefined"


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties (equal to scikit-learn's roc_auc_score)."""
    positives = int(y_true.sum())
    negatives = len(y_true) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=float)
    # Average ranks over ties.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc_auc_by_group(y_true: np.ndarray, scores: np.ndarray, codes: np.ndarray, groups: int) -> np.ndarray:
    return np.array([roc_auc(y_true[codes == g], scores[codes == g]) for g in range(groups)])


def expected_calibration_error(y_true: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    if len(y_true) == 0:
        return float("nan")
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=scores, minlength=bins)
    observed = np.bincount(index, weights=y_true.astype(float), minlength=bins)
    used = count > 0
    return float(np.abs(predicted[used] - observed[used]).sum() / len(y_true))


def multiclass_summary(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> dict[str, Any]:
    """Accuracy, balanced accuracy (macro recall) and macro precision / recall / F1, with the confusion matrix."""
    matrix = np.bincount(y_true * classes + y_pred, minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    recall = _ratio(tp, support)
    precision = _ratio(tp, predicted)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(matrix.sum(), 1)),
        "balanced_accuracy": float(recall[present].mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "confusion_matrix": matrix.tolist(),
    }


def multiclass_by_group(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: int,
    groupings: list[tuple[str, np.ndarray, list[str]]],
    min_group_size: int,
) -> list[dict[str, Any]]:
    """Multiclass performance per group of each grouping (fairness gates are defined for binary outcomes; here the
    board still sees who the model serves worse). Groups under ``min_group_size`` are listed as too small to judge."""
    result = []
    for name, codes, labels in groupings:
        rows = []
        for index, label in enumerate(labels):
            mask = codes == index
            summary = multiclass_summary(y_true[mask], y_pred[mask], classes)
            rows.append(
                {
                    "group": label,
                    "count": int(mask.sum()),
                    "too_small": bool(mask.sum() < min_group_size),
                    **{k: summary[k] for k in ("accuracy", "balanced_accuracy", "f1_macro")},
                }
            )
        judged = [r for r in rows if not r["too_small"]]
        gap = (max(r["accuracy"] for r in judged) - min(r["accuracy"] for r in judged)) if len(judged) > 1 else None
        result.append({"name": name, "groups": rows, "accuracy_gap": gap})
    return result
