"""One evaluation: overall and per-group performance, fairness across groups, bootstrap intervals, policy gates.

Bootstrap: resampling rows with replacement is the same as drawing the (group, label, prediction) cell counts from a
multinomial with the observed cell shares, so each of the resamples costs one multinomial draw per grouping instead
of a pass over the rows. Intervals are percentile intervals (2.5%, 97.5%). ROC AUC and calibration error are point
estimates (they need the scores, not the counts).

Gates: a "max" metric (differences) passes when its point estimate is at most the threshold, a "min" metric
(ratios) when it is at least the threshold; each gate also says whether the whole interval is on the passing side
("robust") so a board can see a pass that is within noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.evaluation.groups import group_codes
from workers.engine.evaluation.metrics import (
    COUNT_METRICS,
    confusion_counts,
    expected_calibration_error,
    fairness_from_metrics,
    metrics_from_counts,
    roc_auc,
    roc_auc_by_group,
)

ENGINE_VERSION = "attest-eval-1"
DIRECTION = {
    "demographic_parity_difference": "max",
    "demographic_parity_ratio": "min",
    "equalized_odds_difference": "max",
    "equalized_odds_ratio": "min",
    "equal_opportunity_difference": "max",
    "predictive_parity_difference": "max",
    "false_positive_rate_difference": "max",
    "false_negative_rate_difference": "max",
}


@dataclass
class Policy:
    sensitive_attributes: list[str]
    gates: list[dict[str, Any]]
    min_group_size: int = 30
    intersections: bool = True


def _nan_to_none(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _interval(samples: np.ndarray) -> list[float | None]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return [None, None]
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def evaluate(
    *,
    y_true: np.ndarray,
    y_score: np.ndarray,
    sensitive: pd.DataFrame,
    policy: Policy,
    seed: int = 0,
    resamples: int = 200,
    threshold: float = 0.5,
) -> dict[str, Any]:
    y_true = np.asarray(y_true).astype(np.int64)
    y_score = np.asarray(y_score, dtype=float)
    y_pred = (y_score >= threshold).astype(np.int64)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    overall_counts = confusion_counts(y_true, y_pred, np.zeros(n, np.int64), 1)
    overall = {name: float(values[0]) for name, values in metrics_from_counts(overall_counts).items()}
    overall["roc_auc"] = _nan_to_none(roc_auc(y_true, y_score))
    overall["calibration_error"] = _nan_to_none(expected_calibration_error(y_true, y_score))
    overall["confusion_matrix"] = {
        "tn": overall_counts[0, 0],
        "fp": overall_counts[0, 1],
        "fn": overall_counts[0, 2],
        "tp": overall_counts[0, 3],
    }
    missing = [a for a in policy.sensitive_attributes if a not in sensitive.columns]
    if missing:
        raise ValueError(f"Sensitive attribute(s) not in the evaluation data: {', '.join(missing)}")
    groupings = []
    for name, codes, labels in group_codes(sensitive, policy.sensitive_attributes, policy.intersections):
        groups = len(labels)
        counts = confusion_counts(y_true, y_pred, codes, groups)
        per_group = metrics_from_counts(counts)
        judged = per_group["count"] >= policy.min_group_size
        fairness = fairness_from_metrics(per_group, judged)
        # Bootstrap the cell counts.
        cells = counts.reshape(-1)
        draws = rng.multinomial(n, cells / cells.sum(), size=resamples).reshape(resamples, groups, 4).astype(float)
        boot_group = metrics_from_counts(draws)
        boot_fair = fairness_from_metrics(boot_group, judged)
        aucs = roc_auc_by_group(y_true, y_score, codes, groups)
        rows = []
        for g, label in enumerate(labels):
            row = {
                "group": label,
                "count": int(per_group["count"][g]),
                "too_small": not bool(judged[g]),
                "roc_auc": _nan_to_none(aucs[g]),
                "calibration_error": _nan_to_none(expected_calibration_error(y_true[codes == g], y_score[codes == g])),
            }
            for metric in COUNT_METRICS:
                row[metric] = float(per_group[metric][g])
                row[f"{metric}_ci"] = _interval(boot_group[metric][:, g])
            rows.append(row)
        groupings.append(
            {
                "name": name,
                "groups": rows,
                "judged_groups": int(judged.sum()),
                "fairness": {
                    metric: {"value": _nan_to_none(float(fairness[metric])), "ci": _interval(boot_fair[metric])}
                    for metric in fairness
                },
            }
        )
    gates = evaluate_gates(groupings, policy.gates)
    return {
        "engine_version": ENGINE_VERSION,
        "seed": seed,
        "resamples": resamples,
        "threshold": threshold,
        "rows": n,
        "overall": overall,
        "groupings": groupings,
        "gates": gates,
        "verdict": "pass" if all(g["passed"] for g in gates) else "fail",
        "min_group_size": policy.min_group_size,
    }


def evaluate_gates(groupings: list[dict[str, Any]], gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each gate against the worst grouping (every attribute and intersection must pass)."""
    results = []
    for gate in gates:
        metric, threshold = gate["metric"], float(gate["threshold"])
        direction = DIRECTION[metric]
        worst = None
        for grouping in groupings:
            entry = grouping["fairness"][metric]
            if entry["value"] is None:
                continue
            if worst is None or (
                entry["value"] > worst[1]["value"] if direction == "max" else entry["value"] < worst[1]["value"]
            ):
                worst = (grouping["name"], entry)
        if worst is None:
            results.append(
                {
                    "metric": metric,
                    "threshold": threshold,
                    "direction": direction,
                    "value": None,
                    "ci": [None, None],
                    "grouping": None,
                    "passed": False,
                    "robust": False,
                    "reason": "no grouping has two groups large enough to judge",
                }
            )
            continue
        value, (low, high) = worst[1]["value"], worst[1]["ci"]
        passed = value <= threshold if direction == "max" else value >= threshold
        robust = (
            (high is not None and high <= threshold) if direction == "max" else (low is not None and low >= threshold)
        )
        results.append(
            {
                "metric": metric,
                "threshold": threshold,
                "direction": direction,
                "value": value,
                "ci": [low, high],
                "grouping": worst[0],
                "passed": bool(passed),
                "robust": bool(robust),
            }
        )
    return results


def privacy_cost(private: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Per group: accuracy and recall of the DP model minus the non-private baseline's (DP hurts small groups more)."""
    out = []
    base = {(g["name"], row["group"]): row for g in baseline["groupings"] for row in g["groups"]}
    for grouping in private["groupings"]:
        for row in grouping["groups"]:
            other = base.get((grouping["name"], row["group"]))
            if other:
                out.append(
                    {
                        "grouping": grouping["name"],
                        "group": row["group"],
                        "count": row["count"],
                        "accuracy_change": row["accuracy"] - other["accuracy"],
                        "recall_change": row["recall"] - other["recall"],
                    }
                )
    return out
