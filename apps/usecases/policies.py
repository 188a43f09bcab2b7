"""Fairness and privacy policies of a use case: validated JSON that the evaluation and training work enforce."""

from __future__ import annotations

import math
from typing import Any

from apps.core.errors import ValidationFailed
from apps.usecases.vocab import ACCOUNTANTS, FAIRNESS_METRICS, LEGACY_ACCOUNTANTS

DEFAULT_FAIRNESS_POLICY: dict[str, Any] = {
    "sensitive_attributes": [],
    "intersections": True,
    "min_group_size": 30,
    "gates": [
        {"metric": "demographic_parity_difference", "threshold": 0.1},
        {"metric": "equalized_odds_difference", "threshold": 0.1},
    ],
}

DEFAULT_PRIVACY_POLICY: dict[str, Any] = {
    "epsilon_cap": 3.0,
    "delta": None,  # None: the largest power of ten <= 1/(10 n), computed per dataset
    "accountant": "pld",
    "max_consent_age_days": 30,
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def normalise_fairness_policy(raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = {**DEFAULT_FAIRNESS_POLICY, **(raw or {})}
    errors: dict[str, list[str]] = {}
    attributes = raw.get("sensitive_attributes")
    if isinstance(attributes, str):
        attributes = [part.strip() for part in attributes.split(",")]
    if not isinstance(attributes, list) or not all(isinstance(item, str) for item in attributes):
        errors["sensitive_attributes"] = ["must be a list of column names"]
        attributes = []
    attributes = list(dict.fromkeys(item.strip() for item in attributes if item.strip()))
    min_group = raw.get("min_group_size")
    if not isinstance(min_group, int) or isinstance(min_group, bool) or min_group < 1:
        errors["min_group_size"] = ["must be a whole number of at least 1"]
    gates = []
    seen = set()
    for index, gate in enumerate(raw.get("gates") or [], start=1):
        metric = gate.get("metric") if isinstance(gate, dict) else None
        threshold = _number(gate.get("threshold")) if isinstance(gate, dict) else None
        if metric not in FAIRNESS_METRICS:
            errors[f"gates[{index}]"] = [f"unknown metric {metric!r}; choose one of {', '.join(FAIRNESS_METRICS)}"]
            continue
        if threshold is None or threshold < 0 or (FAIRNESS_METRICS[metric] == "min" and threshold > 1):
            errors[f"gates[{index}]"] = ["threshold must be a number >= 0 (ratios between 0 and 1)"]
            continue
        if metric in seen:
            errors[f"gates[{index}]"] = [f"{metric} is gated twice"]
            continue
        seen.add(metric)
        gates.append({"metric": metric, "threshold": threshold, "direction": FAIRNESS_METRICS[metric]})
    proxies = raw.get("proxies") or []
    if isinstance(proxies, str):
        proxies = [part.strip() for part in proxies.split(",")]
    if not isinstance(proxies, list) or not all(isinstance(item, str) for item in proxies):
        errors["proxies"] = ["must be a list of column names"]
        proxies = []
    # A sensitive attribute is probed anyway: listing it again as its own proxy adds nothing.
    proxies = [p for p in dict.fromkeys(item.strip() for item in proxies if item.strip()) if p not in attributes]
    robustness_gates = _robustness_gates(raw.get("robustness_gates") or [], errors)
    if errors:
        raise ValidationFailed("The fairness policy is not valid.", {"fairness_policy": errors})
    policy = {
        "sensitive_attributes": attributes,
        "intersections": bool(raw.get("intersections")),
        "min_group_size": min_group,
        "gates": gates,
    }
    # Written only when set, so a policy without them keeps the content (and the revision hash) it had before.
    if proxies:
        policy["proxies"] = proxies
    if robustness_gates:
        policy["robustness_gates"] = robustness_gates
    return policy


def _robustness_gates(raw: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The robustness gates checked by the engine's own validator (the rules the evaluation judges them by), numbers
    typed as text accepted as the fairness gates' are."""
    from workers.engine.robustness.gates import validate_robustness_gates

    if not isinstance(raw, list):
        errors["robustness_gates"] = ["must be a list of {kind, level, metric, max}"]
        return []
    gates = []
    for gate in raw:
        if isinstance(gate, dict):
            gate = {**gate, **{key: _number(gate.get(key)) for key in ("level", "max") if key in gate}}
            gate = {key: gate.get(key) for key in ("kind", "level", "metric", "max")}
        gates.append(gate)
    problems = validate_robustness_gates(gates)
    if problems:
        errors["robustness_gates"] = problems
        return []
    return gates


def normalise_privacy_policy(raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = {**DEFAULT_PRIVACY_POLICY, **(raw or {})}
    errors: dict[str, list[str]] = {}
    cap = _number(raw.get("epsilon_cap"))
    if cap is None or cap <= 0 or cap > 100:
        errors["epsilon_cap"] = ["must be a number above 0 and at most 100"]
    delta = raw.get("delta")
    if delta in ("", None):
        delta = None
    else:
        delta = _number(delta)
        if delta is None or not 0 < delta < 1e-3:
            errors["delta"] = ["must be empty (automatic: 1/(10 n) rounded down to a power of ten) or in (0, 0.001)"]
    accountant = raw.get("accountant") or "pld"
    if accountant in LEGACY_ACCOUNTANTS:
        accountant = "pld"
    if accountant not in ACCOUNTANTS:
        errors["accountant"] = [f"must be one of {', '.join(ACCOUNTANTS)}"]
    max_age = raw.get("max_consent_age_days")
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        errors["max_consent_age_days"] = ["must be a whole number of days"]
    if errors:
        raise ValidationFailed("The privacy policy is not valid.", {"privacy_policy": errors})
    return {"epsilon_cap": cap, "delta": delta, "accountant": accountant, "max_consent_age_days": max_age}


def epsilon_tier(epsilon: float) -> str:
    """PRIVACY.md's tiers: <= 1 strong, <= 10 reasonable, above that weak (ask for an empirical audit)."""
    if epsilon <= 1:
        return "strong"
    if epsilon <= 10:
        return "reasonable"
    return "weak"
