"""Robustness gates: checks of a robustness suite's result, kept in the policy beside the fairness gates.

A gate ``{"kind", "level", "metric", "max"}`` bounds how much one perturbation at one level may WORSEN a metric:
- ``"accuracy_drop"``: baseline accuracy minus accuracy under the perturbation;
- a fairness metric: the change in the worsening direction, i.e. the rise of a difference (perturbed - baseline)
  or the fall of a ratio (baseline - perturbed), each taken at its worst grouping as the fairness gates take it.
It passes when that value is at most ``max``. A gate whose perturbation did not run (FGSM on a model without
gradients, a level the suite did not try, a model without the features it perturbs), whose attack moved no input
(``not_judged``), or whose metric is undefined there is "unknown": never a pass.

This module imports neither torch nor the suite, so the web side can validate and read gates with it.
"""

from __future__ import annotations

import math
from typing import Any

from workers.engine.evaluation.evaluate import DIRECTION

KINDS = ("gaussian_noise", "category_flip", "missing", "fgsm", "pgd")
RATE_KINDS = ("category_flip", "missing")  # the level is a probability per cell
ACCURACY_DROP = "accuracy_drop"
METRICS = (ACCURACY_DROP, *DIRECTION)
PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
KIND_LABELS = {
    "gaussian_noise": "Gaussian noise",
    "category_flip": "category flips",
    "missing": "missing values",
    "fgsm": "FGSM",
    "pgd": "PGD",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def same_level(a: float, b: float) -> bool:
    """Levels are compared with a tolerance: 0.1 typed in a form and 0.1 computed as 1 / 10 are one level."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def validate_robustness_gates(gates: Any) -> list[str]:
    """Error messages, empty when every gate is well formed (``gates[i]`` counts from 1, as the fairness gates')."""
    if not isinstance(gates, list):
        return ["robustness gates must be a list"]
    errors: list[str] = []
    seen: set[tuple[str, float, str]] = set()
    for index, gate in enumerate(gates, start=1):
        where = f"robustness_gates[{index}]"
        if not isinstance(gate, dict):
            errors.append(f"{where}: must be an object with kind, level, metric and max")
            continue
        kind, metric = gate.get("kind"), gate.get("metric")
        level, bound = _number(gate.get("level")), _number(gate.get("max"))
        problems = []
        if kind not in KINDS:
            problems.append(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        if level is None or level <= 0:
            problems.append("level must be a number above 0")
        elif kind in RATE_KINDS and level > 1:
            problems.append(f"level is a share of cells for {kind}: at most 1")
        if metric not in METRICS:
            problems.append(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        if bound is None or not 0 <= bound <= 1:
            problems.append("max must be a number between 0 and 1")
        if not problems:
            assert level is not None
            key = (kind, level, metric)
            if any(k[0] == kind and k[2] == metric and same_level(k[1], level) for k in seen):
                problems.append(f"{metric} under {kind} at level {level:g} is gated twice")
            seen.add(key)
        errors += [f"{where}: {problem}" for problem in problems]
    return errors


def _find(suite: dict[str, Any], kind: str, level: float) -> dict[str, Any] | None:
    for entry in suite.get("perturbations", []):
        if entry.get("kind") == kind and same_level(float(entry.get("level", math.nan)), level):
            return entry
    return None


def _worsening(entry: dict[str, Any], metric: str) -> tuple[float | None, str]:
    if metric == ACCURACY_DROP:
        value = entry.get("accuracy_drop")
        return (None, "accuracy is undefined") if value is None else (float(value), "accuracy drop")
    change = entry.get("fairness_change", {}).get(metric)
    if change is None:
        if metric not in entry.get("fairness", {}):
            return None, f"{metric} was not computed (it is not named in the policy, or the model is not binary)"
        return None, f"{metric} is undefined before or under the perturbation"
    if DIRECTION[metric] == "max":
        return float(change), f"rise of {metric}"
    return 0.0 - float(change), f"fall of {metric}"  # 0.0 - x: no "-0" for an unchanged ratio


def evaluate_robustness_gates(suite: dict[str, Any], gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each gate with ``value`` (the worsening it bounds, or None), ``status`` pass / fail / unknown and a reason."""
    results = []
    for gate in gates:
        kind, metric, level, bound = gate["kind"], gate["metric"], float(gate["level"]), float(gate["max"])
        label = f"{KIND_LABELS.get(kind, kind)} at {level:g}"
        entry = _find(suite, kind, level)
        if entry is None:
            skipped = [s["reason"] for s in suite.get("skipped", []) if s.get("kind") == kind]
            why = skipped[0] if skipped else f"the suite did not try {label}"
            results.append({**gate, "value": None, "status": UNKNOWN, "reason": f"cannot be evaluated: {why}"})
            continue
        if entry.get("not_judged"):
            results.append(
                {**gate, "value": None, "status": UNKNOWN, "reason": f"cannot be evaluated: {entry['not_judged']}"}
            )
            continue
        value, what = _worsening(entry, metric)
        if value is None:
            results.append({**gate, "value": None, "status": UNKNOWN, "reason": f"cannot be evaluated: {what}"})
            continue
        passed = value <= bound
        results.append(
            {
                **gate,
                "value": value,
                "status": PASS if passed else FAIL,
                "reason": f"{what} under {label} is {value:.4g}, {'within' if passed else 'above'} the maximum {bound:g}",
            }
        )
    return results


def robustness_verdict(results: list[dict[str, Any]]) -> str:
    """fail if a gate fails; otherwise unknown if one cannot be evaluated; otherwise pass (also with no gates)."""
    statuses = {r["status"] for r in results}
    return FAIL if FAIL in statuses else UNKNOWN if UNKNOWN in statuses else PASS


def robustness_gates_of(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's robustness gates: its ``robustness_gates`` list, and any entry of ``gates`` that names a
    perturbation ``kind`` (fairness gates have none)."""
    listed = list(policy.get("robustness_gates") or [])
    mixed = [g for g in policy.get("gates") or [] if isinstance(g, dict) and g.get("kind") in KINDS]
    return listed + mixed
