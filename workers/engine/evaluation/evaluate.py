"""One evaluation: overall and per-group performance, fairness across groups, bootstrap intervals, policy gates.

Bootstrap: resampling rows with replacement is the same as drawing the (group, label, prediction) cell counts from a
multinomial with the observed cell shares, so each of the resamples costs one multinomial draw per grouping instead
of a pass over the rows. Intervals are percentile intervals (2.5%, 97.5%) over the resamples in which the metric is
defined: a resample without a group leaves that group's metrics (and every comparison involving it) undefined, and
a between-group ratio of 0/0 is undefined; such resamples are excluded from the interval, never scored as 0, and
their number is recorded beside it (``*_excluded``). ROC AUC and calibration error are point estimates (they need the
scores, not the counts).

Gates: a "max" metric (differences) passes when its point estimate is at most the threshold, a "min" metric
(ratios) when it is at least the threshold; each gate also says whether the whole interval is on the passing side
("robust") so a board can see a pass that is within noise. Every grouping with two or more judged groups must pass.
A gate whose metric is undefined in such a grouping (a ratio of 0/0), or that no grouping can judge, "cannot be
evaluated": it neither passes nor fails, and says why. The verdict is "fail" when a gate fails, otherwise "unknown"
when a gate cannot be evaluated (not a pass: approval needs a waiver for it), otherwise "pass".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.evaluation.groups import groupings as make_groupings
from workers.engine.evaluation.metrics import (
    COUNT_METRICS,
    confusion_counts,
    expected_calibration_error,
    fairness_from_metrics,
    metrics_from_counts,
    roc_auc,
    roc_auc_by_group,
    undefined_reason,
)

ENGINE_VERSION = "attest-eval-2"
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
PASS, FAIL, NOT_EVALUABLE = "pass", "fail", "not evaluable"


@dataclass
class Policy:
    sensitive_attributes: list[str]
    gates: list[dict[str, Any]]
    min_group_size: int = 30
    intersections: bool = True
    # Columns whose values are compared as text (1 and "1" one group); every other column keeps values apart.
    normalised_attributes: list[str] = field(default_factory=list)


def _nan_to_none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _interval(samples: np.ndarray) -> tuple[list[float | None], int]:
    """The 95% percentile interval over the resamples where the metric is defined, and how many were excluded."""
    samples = np.asarray(samples, float)
    finite = samples[np.isfinite(samples)]
    excluded = int(samples.size - finite.size)
    if finite.size == 0:
        return [None, None], excluded
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)], excluded


def evaluate(
    *,
    y_true: np.ndarray,
    y_score: np.ndarray,
    sensitive: pd.DataFrame,
    policy: Policy,
    seed: int = 0,
    resamples: int = 200,
    threshold: float = 0.5,
    y_pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """``y_pred``: the 0/1 decisions when they are not ``y_score >= threshold`` (a mitigated candidate's group
    thresholds or mixture); the scores still give ROC AUC and calibration."""
    y_true = np.asarray(y_true).astype(np.int64)
    y_score = np.asarray(y_score, dtype=float)
    decided_by = "threshold" if y_pred is None else "mitigation"
    y_pred = (y_score >= threshold).astype(np.int64) if y_pred is None else np.asarray(y_pred).astype(np.int64)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    overall_counts = confusion_counts(y_true, y_pred, np.zeros(n, np.int64), 1)
    overall: dict[str, Any] = {
        name: _nan_to_none(float(values[0])) for name, values in metrics_from_counts(overall_counts).items()
    }
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
    normalised = [a for a in policy.normalised_attributes if a in policy.sensitive_attributes]
    groupings = []
    for grouping in make_groupings(sensitive, policy.sensitive_attributes, policy.intersections, normalised):
        codes, labels = grouping.codes, grouping.labels
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
            row: dict[str, Any] = {
                "group": label,
                "values": grouping.values[g],
                "count": int(per_group["count"][g]),
                "too_small": not bool(judged[g]),
                "roc_auc": _nan_to_none(aucs[g]),
                "calibration_error": _nan_to_none(expected_calibration_error(y_true[codes == g], y_score[codes == g])),
            }
            excluded = {}
            for metric in COUNT_METRICS:
                row[metric] = _nan_to_none(float(per_group[metric][g]))
                row[f"{metric}_ci"], excluded[metric] = _interval(boot_group[metric][:, g])
            row["ci_excluded"] = excluded
            rows.append(row)
        entries = {}
        for metric in fairness:
            value = _nan_to_none(float(fairness[metric]))
            ci, excluded_count = _interval(boot_fair[metric])
            entries[metric] = {
                "value": value,
                "ci": ci,
                "ci_excluded": excluded_count,
                "undefined": (
                    None if value is not None else undefined_reason(metric, per_group, judged, policy.min_group_size)
                ),
            }
        groupings.append(
            {
                "name": grouping.name,
                "attributes": grouping.attributes,
                "groups": rows,
                "judged_groups": int(judged.sum()),
                "fairness": entries,
            }
        )
    gates = evaluate_gates(groupings, policy.gates)
    return {
        "engine_version": ENGINE_VERSION,
        "seed": seed,
        "resamples": resamples,
        "threshold": threshold,
        "decided_by": decided_by,
        "rows": n,
        "overall": overall,
        "groupings": groupings,
        "gates": gates,
        "verdict": verdict(gates),
        "min_group_size": policy.min_group_size,
        "missing_label": "(missing)",
        "normalised_attributes": normalised,
    }


def verdict(gates: list[dict[str, Any]]) -> str:
    """The verdict of the gates: fail if one fails; else unknown if one cannot be evaluated; else pass."""
    statuses = {gate_status(g) for g in gates}
    return "fail" if FAIL in statuses else "unknown" if NOT_EVALUABLE in statuses else "pass"


def gate_status(gate: dict[str, Any]) -> str:
    """pass / fail / not evaluable, also for results stored before gates had a status (``passed`` only)."""
    if "status" in gate:
        return gate["status"]
    return PASS if gate.get("passed") else FAIL


def evaluate_gates(groupings: list[dict[str, Any]], gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each gate against every grouping that has two or more judged groups: the worst defined value is reported; a
    failing one fails the gate; otherwise an undefined one (0/0) means the gate cannot be evaluated."""
    results = []
    for gate in gates:
        metric, threshold = gate["metric"], float(gate["threshold"])
        direction = DIRECTION[metric]
        worst = None
        undefined = []
        for grouping in groupings:
            entry = grouping["fairness"][metric]
            if entry["value"] is None:
                if grouping.get("judged_groups", 0) >= 2:
                    undefined.append({"grouping": grouping["name"], "reason": entry.get("undefined") or "undefined"})
                continue
            if worst is None or (
                entry["value"] > worst[1]["value"] if direction == "max" else entry["value"] < worst[1]["value"]
            ):
                worst = (grouping["name"], entry)
        base = {"metric": metric, "threshold": threshold, "direction": direction, "undefined_in": undefined}
        failed = worst is not None and not (
            worst[1]["value"] <= threshold if direction == "max" else worst[1]["value"] >= threshold
        )
        if worst is None or (undefined and not failed):
            if undefined:
                reason = "; ".join(f"{u['grouping']}: {u['reason']}" for u in undefined)
            else:
                reason = "no grouping has two groups large enough to judge"
            results.append(
                {
                    **base,
                    "value": None,
                    "ci": [None, None],
                    "ci_excluded": None,
                    "grouping": undefined[0]["grouping"] if undefined else None,
                    "passed": None,
                    "status": NOT_EVALUABLE,
                    "robust": False,
                    "reason": f"cannot be evaluated: {reason}",
                }
            )
            continue
        value, (low, high) = worst[1]["value"], worst[1]["ci"]
        robust = (
            (high is not None and high <= threshold) if direction == "max" else (low is not None and low >= threshold)
        )
        results.append(
            {
                **base,
                "value": value,
                "ci": [low, high],
                "ci_excluded": worst[1].get("ci_excluded"),
                "grouping": worst[0],
                "passed": not failed,
                "status": FAIL if failed else PASS,
                "robust": bool(robust and not failed),
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
