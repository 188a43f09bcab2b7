"""The monitoring plan and the evaluation of one window against it: one result per monitor.

A result is ``{"monitor": "<family>:<metric>[:<subject>]", "family", "subject", "status", "severity", "value",
"threshold", "interval", "rows", "message", "details"}``:
- ``status`` is "pass", "warn", "fail" or "insufficient"; too few rows in the window (``min_rows``), too few
  labelled rows (``min_labelled``, for performance and fairness) or a group under the evaluation's minimum group size
  give "insufficient", never pass or fail, and then ``value`` and ``interval`` are None.
- ``severity``: info (pass, insufficient), warning (warn), critical (fail).
- ``value`` is compared with ``threshold`` in the same units; ``interval`` is the value's 95% interval (or, for a
  statistic from a sketch, the bounds the sketch guarantees); ``details`` holds the rest (baseline, statistic...).

Families and their monitors:
- data_drift, per feature: ``psi`` (warn at psi_warn, fail at psi_alert; threshold = psi_alert); numeric ``ks``
  (value = p-value, warn below ks_pvalue) and ``wasserstein`` (reported, not judged); categorical ``chi_square``
  (value = p-value, warn below ks_pvalue) and ``jensen_shannon`` (reported, not judged).
- prediction_drift: ``psi`` of the scores on the training score grid (or of the predicted positive share), fail at
  psi_alert.
- data_quality: ``schema``; per feature ``missing``, ``out_of_range`` (numeric), ``new_categories`` (categorical).
- performance: the plan's metric with its interval, failing when worse than the evaluation's by more than max_drop
  (for FPR / FNR, higher is worse).
- fairness: for every gated metric of the evaluation, per grouping (``fairness:equalized_odds_difference:race|sex``),
  and each rate it is made of per group (``fairness:false_positive_rate:sex=Female``), failing when worse than the
  evaluation's by more than max_increase (a selection rate moving either way).
- privacy: ``withdrawn_share`` (consent withdrawn since training by people in the training data), ``retention``
  (training data whose retention date passed), ``budget`` (share of the privacy budget left).
Performance and fairness "warn" when the value is worse than the evaluation's but within the limit, yet its interval
reaches beyond the limit: the window cannot rule out a breach.
"""

from __future__ import annotations

import copy
import math
from datetime import date
from typing import Any

import numpy as np

from workers.engine.evaluation.evaluate import DIRECTION
from workers.engine.monitoring.drift import drift_from_sketch, prediction_drift_from_sketch
from workers.engine.monitoring.performance import (
    COMPONENTS,
    HIGHER_IS_WORSE,
    PERFORMANCE_METRICS,
    baseline_by_grouping,
    performance_metrics,
    window_fairness,
)
from workers.engine.monitoring.quality import quality_checks, sketch_schema_problems
from workers.engine.monitoring.sketch import ALL, WindowSketch

LIMIT_WORDS = {"fail": "beyond", "warn": "within (but its 95% interval reaches past)", "pass": "within"}
SEVERITY = {"pass": "info", "warn": "warning", "fail": "critical", "insufficient": "info"}
DEFAULT_PLAN: dict[str, Any] = {
    "window": "week",
    "min_rows": 500,
    "min_labelled": 200,
    "keep_raw_rows": False,
    "raw_retention_days": 90,
    "monitors": {
        "data_drift": {"enabled": True, "psi_warn": 0.1, "psi_alert": 0.25, "ks_pvalue": 0.001},
        "prediction_drift": {"enabled": True, "psi_alert": 0.25},
        "data_quality": {"enabled": True, "missing_increase": 0.05, "out_of_range": 0.05, "new_categories": 0.02},
        "performance": {"enabled": True, "metric": "accuracy", "max_drop": 0.05},
        "fairness": {"enabled": True, "max_increase": 0.05},
        "privacy": {"enabled": True, "withdrawn_share": 0.01, "budget_remaining_below": 0.1},
    },
}
DEFAULT_MIN_GROUP_SIZE = 30


def default_plan() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_PLAN)


# Field rules: ("bool",) | ("int", low, high) | ("number", low, high) | ("choice", options).
PLAN_FIELDS: dict[str, tuple[Any, ...]] = {
    "window": ("choice", ("week", "day")),
    "min_rows": ("int", 1, 10**9),
    "min_labelled": ("int", 1, 10**9),
    "keep_raw_rows": ("bool",),
    "raw_retention_days": ("int", 1, 3650),
}
SHARE = ("number", 0.0, 1.0)
MONITOR_FIELDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "data_drift": {
        "enabled": ("bool",),
        "psi_warn": ("number", 0.0, 10.0),
        "psi_alert": ("number", 0.0, 10.0),
        "ks_pvalue": SHARE,
    },
    "prediction_drift": {"enabled": ("bool",), "psi_alert": ("number", 0.0, 10.0)},
    "data_quality": {"enabled": ("bool",), "missing_increase": SHARE, "out_of_range": SHARE, "new_categories": SHARE},
    "performance": {"enabled": ("bool",), "metric": ("choice", PERFORMANCE_METRICS), "max_drop": SHARE},
    "fairness": {"enabled": ("bool",), "max_increase": SHARE},
    "privacy": {"enabled": ("bool",), "withdrawn_share": SHARE, "budget_remaining_below": SHARE},
}


def _field_error(rule: tuple[Any, ...], value: Any) -> str | None:
    kind = rule[0]
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "choice":
        return None if value in rule[1] else f"must be one of {', '.join(rule[1])}"
    low, high = rule[1], rule[2]
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"must be a whole number from {low} to {high}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return None if ok and low <= value <= high else f"must be a number from {low:g} to {high:g}"


def validate_plan(spec: Any) -> tuple[dict[str, Any], list[str]]:
    """The plan with defaults for what ``spec`` leaves out, and the problems found, each "field.path: what is
    wrong". Invalid values are replaced by defaults in the clean plan; the caller refuses a plan with errors."""
    clean = default_plan()
    errors: list[str] = []
    if not isinstance(spec, dict):
        return clean, ["plan: must be an object"]
    for key, value in spec.items():
        if key == "monitors":
            continue
        if key not in PLAN_FIELDS:
            errors.append(f"{key}: unknown setting")
        elif (problem := _field_error(PLAN_FIELDS[key], value)) is not None:
            errors.append(f"{key}: {problem}")
        else:
            clean[key] = value
    monitors = spec.get("monitors", {})
    if not isinstance(monitors, dict):
        return clean, [*errors, "monitors: must be an object"]
    for family, settings in monitors.items():
        if family not in MONITOR_FIELDS:
            errors.append(f"monitors.{family}: unknown monitor (known: {', '.join(MONITOR_FIELDS)})")
            continue
        if not isinstance(settings, dict):
            errors.append(f"monitors.{family}: must be an object")
            continue
        for key, value in settings.items():
            path = f"monitors.{family}.{key}"
            if key not in MONITOR_FIELDS[family]:
                errors.append(f"{path}: unknown setting")
            elif (problem := _field_error(MONITOR_FIELDS[family][key], value)) is not None:
                errors.append(f"{path}: {problem}")
            else:
                clean["monitors"][family][key] = value
    drift = clean["monitors"]["data_drift"]
    if drift["psi_warn"] > drift["psi_alert"]:
        errors.append("monitors.data_drift.psi_warn: must not be above psi_alert")
    return clean, errors


def _number(value: float) -> str:
    return f"{value:.3g}"


def _share(value: float) -> str:
    return f"{100 * value:.1f}%"


def _result(
    family: str,
    metric: str,
    subject: str | None,
    status: str,
    message: str,
    *,
    value: float | None = None,
    threshold: float | None = None,
    interval: list[float] | None = None,
    rows: int = 0,
    **details: Any,
) -> dict[str, Any]:
    judged = status != "insufficient"
    return {
        "monitor": ":".join(part for part in (family, metric, subject) if part is not None),
        "family": family,
        "subject": subject,
        "status": status,
        "severity": SEVERITY[status],
        "value": _finite(value) if judged else None,
        "threshold": _finite(threshold),
        "interval": [float(x) for x in interval] if judged and interval is not None else None,
        "rows": int(rows),
        "message": message,
        "details": _plain(details),
    }


def _plain(value: Any) -> Any:
    """JSON types only (numpy scalars become Python numbers; NaN becomes None)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite(float(value))
    return value


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _data_drift(reference: dict, sketch: WindowSketch, plan: dict) -> list[dict[str, Any]]:
    limits = plan["monitors"]["data_drift"]
    out = []
    for entry in drift_from_sketch(reference, sketch, limits):
        name, rows = entry["feature"], entry["rows"]
        metrics = (
            ("psi", "ks", "wasserstein") if entry["kind"] == "numeric" else ("psi", "chi_square", "jensen_shannon")
        )
        if entry["insufficient"] or rows < plan["min_rows"]:
            if reference["features"][name].get("insufficient"):
                why = f"the training data has too few values of {name} to compare with"
            else:
                why = f"only {rows} rows of {name} have a value in this window; {plan['min_rows']} are needed"
            for metric in metrics:
                out.append(_result("data_drift", metric, name, "insufficient", f"Not judged: {why}.", rows=rows))
            continue
        value = entry["psi"]
        if value >= limits["psi_alert"]:
            status, said = "fail", f"above the alert level {_number(limits['psi_alert'])}"
        elif value >= limits["psi_warn"]:
            status, said = "warn", f"above the warning level {_number(limits['psi_warn'])}"
        else:
            status, said = "pass", f"below the warning level {_number(limits['psi_warn'])}"
        out.append(
            _result(
                "data_drift",
                "psi",
                name,
                status,
                f"The population stability index of {name} against the training data is {_number(value)}, {said}.",
                value=value,
                threshold=limits["psi_alert"],
                rows=rows,
                psi_warn=limits["psi_warn"],
            )
        )
        if entry["kind"] == "numeric":
            pvalue, low_high = entry["ks_pvalue"], entry["ks_statistic_bounds"]
            status = "warn" if pvalue < limits["ks_pvalue"] else "pass"
            verdict = "differs significantly from" if status == "warn" else "does not differ significantly from"
            out.append(
                _result(
                    "data_drift",
                    "ks",
                    name,
                    status,
                    f"The distribution of {name} {verdict} the training data (Kolmogorov-Smirnov statistic "
                    f"{_number(entry['ks_statistic'])}, p = {_number(pvalue)}).",
                    value=pvalue,
                    threshold=limits["ks_pvalue"],
                    interval=entry["ks_pvalue_bounds"],
                    rows=rows,
                    statistic=entry["ks_statistic"],
                    statistic_bounds=low_high,
                )
            )
            out.append(
                _result(
                    "data_drift",
                    "wasserstein",
                    name,
                    "pass",
                    f"The Wasserstein distance of {name} from the training data is {_number(entry['wasserstein'])} "
                    "in the feature's units (reported, not judged).",
                    value=entry["wasserstein"],
                    interval=entry["wasserstein_bounds"],
                    rows=rows,
                    normalised=entry["wasserstein_normalised"],
                )
            )
        else:
            pvalue = entry["chi_square_pvalue"]
            if math.isnan(pvalue):
                out.append(
                    _result(
                        "data_drift",
                        "chi_square",
                        name,
                        "insufficient",
                        f"Not judged: {name} has fewer than two categories to compare.",
                        rows=rows,
                    )
                )
            else:
                status = "warn" if pvalue < limits["ks_pvalue"] else "pass"
                verdict = "differ significantly from" if status == "warn" else "do not differ significantly from"
                left_out = ""
                if entry["chi_square_dropped_rows"]:
                    left_out = (
                        f"; {int(entry['chi_square_dropped_rows'])} rows in categories training never had are left out"
                    )
                out.append(
                    _result(
                        "data_drift",
                        "chi_square",
                        name,
                        status,
                        f"The categories of {name} {verdict} the training data (chi-square "
                        f"{_number(entry['chi_square'])}, p = {_number(pvalue)}{left_out}).",
                        value=pvalue,
                        threshold=limits["ks_pvalue"],
                        rows=rows,
                        statistic=entry["chi_square"],
                        left_out=entry["chi_square_dropped"],
                        left_out_rows=entry["chi_square_dropped_rows"],
                    )
                )
            out.append(
                _result(
                    "data_drift",
                    "jensen_shannon",
                    name,
                    "pass",
                    f"The Jensen-Shannon distance of {name} from the training data is "
                    f"{_number(entry['jensen_shannon'])} (reported, not judged).",
                    value=entry["jensen_shannon"],
                    rows=rows,
                )
            )
    return out


def _prediction_drift(reference: dict, sketch: WindowSketch, plan: dict) -> list[dict[str, Any]]:
    limit = plan["monitors"]["prediction_drift"]["psi_alert"]
    entry = prediction_drift_from_sketch(reference, sketch)
    if entry is None:
        return [
            _result(
                "prediction_drift",
                "psi",
                None,
                "insufficient",
                "Not judged: there are no prediction scores (or decisions) to compare with the training ones.",
            )
        ]
    rows = entry["rows"]
    if rows < plan["min_rows"]:
        return [
            _result(
                "prediction_drift",
                "psi",
                None,
                "insufficient",
                f"Not judged: only {rows} predictions in this window; {plan['min_rows']} are needed.",
                rows=rows,
            )
        ]
    status = "fail" if entry["psi"] >= limit else "pass"
    basis = "prediction scores" if entry["basis"] == "scores" else "share of positive predictions"
    side = "above" if status == "fail" else "below"
    return [
        _result(
            "prediction_drift",
            "psi",
            None,
            status,
            f"The population stability index of the {basis} against training is {_number(entry['psi'])}, {side} the "
            f"alert level {_number(limit)}.",
            value=entry["psi"],
            threshold=limit,
            rows=rows,
            basis=entry["basis"],
        )
    ]


def _data_quality(reference: dict, sketch: WindowSketch, plan: dict) -> list[dict[str, Any]]:
    tolerances = plan["monitors"]["data_quality"]
    enough = sketch.rows >= plan["min_rows"]
    short = f"Not judged: only {sketch.rows} rows in this window; {plan['min_rows']} are needed."
    out = []
    if enough:
        problems = sketch_schema_problems(reference, sketch)
        message = " ".join(problems) if problems else "Every batch had the training schema."
        status = "fail" if problems else "pass"
        out.append(
            _result(
                "data_quality",
                "schema",
                None,
                status,
                message,
                value=len(problems),
                threshold=0,
                rows=sketch.rows,
                problems=problems,
            )
        )
    else:
        out.append(_result("data_quality", "schema", None, "insufficient", short, rows=sketch.rows))
    words = {
        "missing": ("share of missing values", "training had"),
        "out_of_range": ("share of values outside the training's expected range", "training had"),
        "new_categories": ("share of values that are not a training category", "training had rare values in"),
    }
    for check in quality_checks(reference, sketch, tolerances):
        name, kind, rows = check["feature"], check["check"], check["rows"]
        if not enough or check["value"] is None or rows < plan["min_rows"]:
            message = short if not enough else f"Not judged: only {rows} values of {name}; {plan['min_rows']} needed."
            out.append(_result("data_quality", kind, name, "insufficient", message, rows=rows))
            continue
        status = "fail" if check["failed"] else "pass"
        what, had = words[kind]
        extra = ""
        if kind == "new_categories" and check["new_categories"]:
            extra = f"; most frequent new: {', '.join(check['new_categories'])}"
        out.append(
            _result(
                "data_quality",
                kind,
                name,
                status,
                f"The {what} of {name} is {_share(check['value'])} ({had} {_share(check['expected'])}, limit "
                f"{_share(check['threshold'])}){extra}.",
                value=check["value"],
                threshold=check["threshold"],
                rows=rows,
                expected=check["expected"],
                **({"new_categories": check["new_categories"]} if kind == "new_categories" else {}),
            )
        )
    return out


def _judge(value: float, baseline: float, interval: list[float] | None, limit: float, higher_is_worse: bool) -> str:
    """fail beyond the limit; warn when worse than the baseline and the interval reaches past the limit."""
    if higher_is_worse:
        if value > limit:
            return "fail"
        return "warn" if value > baseline and interval is not None and interval[1] > limit else "pass"
    if value < limit:
        return "fail"
    return "warn" if value < baseline and interval is not None and interval[0] < limit else "pass"


def _performance(sketch: WindowSketch, plan: dict, baseline: dict | None, resamples: int, seed: int) -> list[dict]:
    settings = plan["monitors"]["performance"]
    metric, max_drop = settings["metric"], settings["max_drop"]
    labelled = sketch.labelled
    if labelled < plan["min_labelled"]:
        message = f"Not judged: only {labelled} labelled rows in this window; {plan['min_labelled']} are needed."
        return [_result("performance", metric, None, "insufficient", message, rows=labelled)]
    entry = performance_metrics(sketch.confusion[ALL], resamples=resamples, seed=seed)[metric]
    if entry["value"] is None:
        message = f"Not judged: {metric} is undefined in this window (its denominator is empty)."
        return [_result("performance", metric, None, "insufficient", message, rows=labelled)]
    value, interval = entry["value"], entry["interval"]
    reference_value = (baseline or {}).get("overall", {}).get(metric)
    if reference_value is None:
        message = f"The {metric} is {_number(value)}; there is no evaluation baseline to compare it with."
        return [_result("performance", metric, None, "pass", message, value=value, interval=interval, rows=labelled)]
    higher_is_worse = metric in HIGHER_IS_WORSE
    limit = reference_value + max_drop if higher_is_worse else reference_value - max_drop
    status = _judge(value, reference_value, interval, limit, higher_is_worse)
    return [
        _result(
            "performance",
            metric,
            None,
            status,
            f"The {metric} is {_number(value)} against {_number(reference_value)} at evaluation, "
            f"{LIMIT_WORDS[status]} the limit {_number(limit)}.",
            value=value,
            threshold=limit,
            interval=interval,
            rows=labelled,
            baseline=reference_value,
        )
    ]


def _fairness(sketch: WindowSketch, plan: dict, baseline: dict | None, resamples: int, seed: int) -> list[dict]:
    max_increase = plan["monitors"]["fairness"]["max_increase"]
    if baseline is None:
        message = "Not judged: there is no evaluation baseline with fairness gates to compare with."
        return [_result("fairness", "gates", None, "insufficient", message, rows=sketch.labelled)]
    gates = list(dict.fromkeys(gate["metric"] for gate in baseline.get("gates", [])))
    if not gates:
        message = "Not judged: the evaluation has no fairness gates to monitor."
        return [_result("fairness", "gates", None, "insufficient", message, rows=sketch.labelled)]
    min_group_size = int(baseline.get("min_group_size", DEFAULT_MIN_GROUP_SIZE))
    enough = sketch.labelled >= plan["min_labelled"]
    window = {
        tuple(grouping["attributes"]): grouping
        for grouping in window_fairness(sketch.confusion, min_group_size=min_group_size, resamples=resamples, seed=seed)
    }
    rates = list(dict.fromkeys(rate for gate in gates for rate in COMPONENTS[gate]))
    short = f"Not judged: only {sketch.labelled} labelled rows in this window; {plan['min_labelled']} are needed."
    out = []
    for attributes, reference_grouping in baseline_by_grouping(baseline).items():
        subject = "|".join(attributes)
        current = window.get(attributes)
        rows = sum(group["count"] for group in current["groups"]) if current else 0
        for gate in gates:
            base_value = reference_grouping["fairness"].get(gate, {}).get("value")
            entry = current["fairness"][gate] if current else {"value": None, "ci": None}
            if not enough:
                out.append(_result("fairness", gate, subject, "insufficient", short, rows=rows))
                continue
            if current is None or current["judged_groups"] < 2 or entry["value"] is None or base_value is None:
                if base_value is None:
                    why = f"the evaluation has no value of {gate} for {subject}"
                elif current is None or current["judged_groups"] < 2:
                    why = f"fewer than two groups of {subject} have {min_group_size} labelled rows in this window"
                else:
                    why = f"{gate} is undefined for {subject} in this window"
                out.append(_result("fairness", gate, subject, "insufficient", f"Not judged: {why}.", rows=rows))
                continue
            higher_is_worse = DIRECTION[gate] == "max"
            limit = base_value + max_increase if higher_is_worse else base_value - max_increase
            status = _judge(entry["value"], base_value, entry["ci"], limit, higher_is_worse)
            out.append(
                _result(
                    "fairness",
                    gate,
                    subject,
                    status,
                    f"The {gate} across {subject} is {_number(entry['value'])} against {_number(base_value)} at "
                    f"evaluation, {LIMIT_WORDS[status]} the limit {_number(limit)}.",
                    value=entry["value"],
                    threshold=limit,
                    interval=entry["ci"],
                    rows=rows,
                    baseline=base_value,
                )
            )
        window_groups = {group["key"]: group for group in current["groups"]} if current else {}
        for key in list(dict.fromkeys([*reference_grouping["groups"], *window_groups])):
            reference_row, row = reference_grouping["groups"].get(key), window_groups.get(key)
            for rate in rates:
                out.append(_group_rate(rate, key, reference_row, row, enough, short, min_group_size, max_increase))
    return out


def _group_rate(
    rate: str,
    key: str,
    reference_row: dict | None,
    row: dict | None,
    enough: bool,
    short: str,
    min_group_size: int,
    max_increase: float,
) -> dict[str, Any]:
    rows = row["count"] if row else 0
    if not enough:
        return _result("fairness", rate, key, "insufficient", short, rows=rows)
    base_value = reference_row.get(rate) if reference_row else None
    why = None
    if row is None or rows < min_group_size:
        why = f"{key} has {rows} labelled rows in this window; {min_group_size} are needed"
    elif row[f"{rate}_rows"] == 0:
        why = f"the {rate} of {key} is undefined in this window (its denominator is empty)"
    elif base_value is None:
        why = f"the evaluation has no {rate} for {key}"
    if why is not None:
        return _result("fairness", rate, key, "insufficient", f"Not judged: {why}.", rows=rows)
    value, interval = row[rate], row[f"{rate}_ci"]
    if rate == "selection_rate":
        higher_is_worse = value >= base_value  # a move either way changes who is selected
    else:
        higher_is_worse = rate in HIGHER_IS_WORSE
    limit = base_value + max_increase if higher_is_worse else base_value - max_increase
    status = _judge(value, base_value, interval, limit, higher_is_worse)
    return _result(
        "fairness",
        rate,
        key,
        status,
        f"The {rate} of {key} is {_number(value)} against {_number(base_value)} at evaluation, "
        f"{LIMIT_WORDS[status]} the limit {_number(limit)}.",
        value=value,
        threshold=limit,
        interval=interval,
        rows=rows,
        baseline=base_value,
        evaluation_too_small=bool(reference_row.get("too_small")) if reference_row else None,
    )


def _privacy(plan: dict, privacy: dict | None, today: date | None) -> list[dict[str, Any]]:
    settings = plan["monitors"]["privacy"]
    if privacy is None:
        message = "Not judged: no consent, retention or budget facts were supplied for this model."
        return [_result("privacy", metric, None, "insufficient", message) for metric in PRIVACY_METRICS]
    out = []
    people = int(privacy.get("training_people") or 0)
    withdrawn = int(privacy.get("withdrawn_since_training") or 0)
    if people <= 0:
        message = "Not judged: the number of people in the training data is not known."
        out.append(_result("privacy", "withdrawn_share", None, "insufficient", message))
    else:
        share, limit = withdrawn / people, settings["withdrawn_share"]
        status = "fail" if share > limit else "warn" if withdrawn else "pass"
        out.append(
            _result(
                "privacy",
                "withdrawn_share",
                None,
                status,
                f"{withdrawn} of the {people} people in the training data ({_share(share)}) have withdrawn consent "
                f"since training (limit {_share(limit)}).",
                value=share,
                threshold=limit,
                rows=people,
                withdrawn=withdrawn,
            )
        )
    passed = sorted(date.fromisoformat(str(day)[:10]) for day in privacy.get("retention_passed") or [])
    if today is not None:
        passed = [day for day in passed if day <= today]
    if passed:
        more = f" and {len(passed) - 1} more" if len(passed) > 1 else ""
        message = f"The retention date of training data passed on {passed[0].isoformat()}{more}."
        status = "fail"
    else:
        message, status = "No retention date of the training data has passed.", "pass"
    out.append(
        _result(
            "privacy",
            "retention",
            None,
            status,
            message,
            value=len(passed),
            threshold=0,
            rows=people,
            dates=[day.isoformat() for day in passed],
        )
    )
    budget = privacy.get("budget") or {}
    cap, spent = budget.get("epsilon_cap"), budget.get("composed_spent")
    if not cap or cap <= 0 or spent is None:
        message = "Not judged: the use case has no privacy budget cap or no recorded spending."
        out.append(_result("privacy", "budget", None, "insufficient", message))
    else:
        remaining, limit = (cap - spent) / cap, settings["budget_remaining_below"]
        status = "fail" if spent > cap else "warn" if remaining < limit else "pass"
        out.append(
            _result(
                "privacy",
                "budget",
                None,
                status,
                f"Epsilon {_number(spent)} of the cap {_number(cap)} is spent, leaving {_share(max(remaining, 0))} "
                f"(warning below {_share(limit)}).",
                value=remaining,
                threshold=limit,
                epsilon_cap=cap,
                composed_spent=spent,
            )
        )
    return out


PRIVACY_METRICS = ("withdrawn_share", "retention", "budget")


def evaluate_window(
    *,
    reference: dict[str, Any],
    sketch: WindowSketch,
    plan: dict[str, Any],
    baseline: dict[str, Any] | None,
    privacy: dict[str, Any] | None,
    resamples: int = 200,
    seed: int = 0,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Every enabled monitor of ``plan`` on one window. ``baseline`` is the evaluation's ``results``; ``privacy`` is
    ``{"training_people", "withdrawn_since_training", "retention_passed": [iso dates], "budget": {"epsilon_cap",
    "composed_spent"}}``. Bootstrap intervals use ``seed``, so re-evaluating a window gives the same results.
    ``today``, when given, ignores retention dates after it."""
    plan, errors = validate_plan(plan)
    if errors:
        raise ValueError("Invalid monitoring plan: " + "; ".join(errors))
    enabled = {family for family, settings in plan["monitors"].items() if settings["enabled"]}
    results: list[dict[str, Any]] = []
    if "data_drift" in enabled:
        results += _data_drift(reference, sketch, plan)
    if "prediction_drift" in enabled:
        results += _prediction_drift(reference, sketch, plan)
    if "data_quality" in enabled:
        results += _data_quality(reference, sketch, plan)
    if "performance" in enabled:
        results += _performance(sketch, plan, baseline, resamples, seed)
    if "fairness" in enabled:
        results += _fairness(sketch, plan, baseline, resamples, seed)
    if "privacy" in enabled:
        results += _privacy(plan, privacy, today)
    return results
