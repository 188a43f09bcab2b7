"""The monitoring plan and the evaluation of a window: shapes, statuses, insufficient data, each family."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.workers.engine.monitoring.conftest import FEATURES, make_rows
from workers.engine.evaluation.evaluate import Policy, evaluate
from workers.engine.monitoring.monitors import default_plan, evaluate_window, validate_plan
from workers.engine.monitoring.reference import build_reference
from workers.engine.monitoring.sketch import WindowSketch

RESULT_KEYS = {
    "monitor",
    "family",
    "subject",
    "status",
    "severity",
    "value",
    "threshold",
    "interval",
    "rows",
    "message",
}
PRIVACY_OK = {
    "training_people": 20_000,
    "withdrawn_since_training": 0,
    "retention_passed": [],
    "budget": {"epsilon_cap": 10.0, "composed_spent": 3.0},
}


def scenario(seed, n, *, shift=0.0, female_false_positives=0.0):
    """Rows, scores, labels and sensitive attributes of a model that is right about 75% of the time; optionally
    incomes shifted and extra false positives for women."""
    rng = np.random.default_rng(seed)
    frame = make_rows(seed, n, shift=shift)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])})
    labels = rng.integers(0, 2, n)
    scores = np.clip(np.where(labels == 1, 0.65, 0.35) + rng.normal(0, 0.2, n), 0, 1)
    extra = (labels == 0) & (groups["sex"].to_numpy() == "F") & (rng.random(n) < female_false_positives)
    scores = np.where(extra, 0.9, scores)
    return frame, scores, labels, groups


@pytest.fixture(scope="module")
def reference_and_baseline(training):
    _, scores, labels, groups = scenario(1, len(training))
    reference = build_reference(training, features=FEATURES, scores=scores)
    gates = [
        {"metric": "equalized_odds_difference", "threshold": 0.1},
        {"metric": "demographic_parity_difference", "threshold": 0.1},
    ]
    _, holdout_scores, holdout_labels, holdout_groups = scenario(2, 10_000)
    baseline = evaluate(
        y_true=holdout_labels,
        y_score=holdout_scores,
        sensitive=holdout_groups,
        policy=Policy(["sex", "race"], gates=gates, min_group_size=30),
    )
    return reference, baseline


def run(reference_and_baseline, frame, scores, labels, groups, *, plan=None, privacy=PRIVACY_OK):
    reference, baseline = reference_and_baseline
    sketch = WindowSketch.empty(reference).add(frame, scores=scores, labels=labels, groups=groups)
    results = evaluate_window(
        reference=reference,
        sketch=WindowSketch.from_dict(reference, sketch.to_dict()),
        plan=plan or default_plan(),
        baseline=baseline,
        privacy=privacy,
    )
    return {result["monitor"]: result for result in results}


def test_default_plan_is_the_agreed_shape():
    assert default_plan() == {
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
    plan = default_plan()
    plan["monitors"]["data_drift"]["psi_alert"] = 9
    assert default_plan()["monitors"]["data_drift"]["psi_alert"] == 0.25  # a copy each time


def test_validate_plan_fills_defaults_for_a_partial_plan():
    clean, errors = validate_plan({"window": "day", "monitors": {"performance": {"metric": "recall"}}})
    assert errors == []
    assert clean["window"] == "day" and clean["monitors"]["performance"] == {
        "enabled": True,
        "metric": "recall",
        "max_drop": 0.05,
    }
    assert clean["min_rows"] == 500


def test_validate_plan_names_each_field_at_fault():
    clean, errors = validate_plan(
        {
            "window": "month",
            "min_rows": True,
            "raw_retention_days": 0,
            "colour": "blue",
            "monitors": {
                "data_drift": {"psi_warn": 0.5, "psi_alert": 0.2, "ks_pvalue": "small"},
                "performance": {"metric": "vibes"},
                "weather": {},
                "privacy": {"enabled": "yes"},
            },
        }
    )
    fields = sorted(error.split(":")[0] for error in errors)
    assert fields == sorted(
        [
            "window",
            "min_rows",
            "raw_retention_days",
            "colour",
            "monitors.data_drift.ks_pvalue",
            "monitors.data_drift.psi_warn",
            "monitors.performance.metric",
            "monitors.weather",
            "monitors.privacy.enabled",
        ]
    )
    assert clean["window"] == "week" and clean["min_rows"] == 500  # invalid values fall back to defaults
    assert validate_plan("weekly")[1] == ["plan: must be an object"]


def test_an_invalid_plan_is_refused(reference_and_baseline):
    frame, scores, labels, groups = scenario(3, 100)
    with pytest.raises(ValueError, match="min_rows"):
        run(reference_and_baseline, frame, scores, labels, groups, plan={"min_rows": -1})


def test_results_have_the_agreed_shape_and_are_json(reference_and_baseline):
    results = run(reference_and_baseline, *scenario(4, 3000))
    json.dumps(list(results.values()))
    severity = {"pass": "info", "warn": "warning", "fail": "critical", "insufficient": "info"}
    for name, result in results.items():
        assert RESULT_KEYS <= result.keys()
        assert result["severity"] == severity[result["status"]]
        assert name.startswith(result["family"] + ":")
        assert result["subject"] is None or name.endswith(":" + result["subject"])
        assert result["message"].endswith(".") and "\n" not in result["message"]
    families = {result["family"] for result in results.values()}
    assert families == {"data_drift", "prediction_drift", "data_quality", "performance", "fairness", "privacy"}


def test_a_small_window_is_insufficient_never_pass_or_fail(reference_and_baseline):
    results = run(reference_and_baseline, *scenario(5, 150))  # below min_rows (500) and min_labelled (200)
    for result in results.values():
        if result["family"] != "privacy":
            assert result["status"] == "insufficient", result["monitor"]
            assert result["value"] is None and result["interval"] is None


def test_labels_below_min_labelled_leave_performance_and_fairness_insufficient(reference_and_baseline):
    frame, scores, labels, groups = scenario(6, 3000)
    results = run(reference_and_baseline, frame, scores, None, None)
    assert results["data_drift:psi:age"]["status"] == "pass"
    assert results["performance:accuracy"]["status"] == "insufficient"
    assert "labelled" in results["performance:accuracy"]["message"]
    assert all(r["status"] == "insufficient" for r in results.values() if r["family"] == "fairness")


def test_a_drifted_feature_fails_and_the_others_pass(reference_and_baseline):
    results = run(reference_and_baseline, *scenario(7, 5000, shift=0.6))
    income = results["data_drift:psi:income"]
    assert income["status"] == "fail" and income["value"] > income["threshold"] == 0.25
    assert results["data_drift:ks:income"]["status"] == "warn"
    assert results["data_quality:out_of_range:income"]["status"] == "fail"
    for name in ("age", "hours"):
        assert results[f"data_drift:psi:{name}"]["status"] == "pass"
    for name in ("workclass", "region"):
        assert results[f"data_drift:psi:{name}"]["status"] == "pass"
        assert results[f"data_drift:chi_square:{name}"]["status"] == "pass"
    assert results["data_drift:wasserstein:income"]["threshold"] is None  # reported, not judged


def test_a_window_like_training_raises_nothing(reference_and_baseline):
    results = run(reference_and_baseline, *scenario(8, 8000))
    failed = [name for name, result in results.items() if result["status"] == "fail"]
    assert failed == []
    assert results["performance:accuracy"]["status"] == "pass"
    assert results["prediction_drift:psi"]["status"] == "pass"


def test_a_rising_false_positive_rate_of_one_group_fails_that_group(reference_and_baseline):
    results = run(reference_and_baseline, *scenario(9, 8000, female_false_positives=0.3))
    women = results["fairness:false_positive_rate:sex=F"]
    assert women["status"] == "fail" and women["value"] > women["threshold"] > women["details"]["baseline"]
    low, high = women["interval"]
    assert low <= women["value"] <= high
    assert results["fairness:false_positive_rate:sex=M"]["status"] != "fail"
    assert results["fairness:equalized_odds_difference:sex"]["status"] == "fail"
    assert results["fairness:false_positive_rate:race=a|sex=F"]["status"] == "fail"
    assert results["fairness:recall:sex=F"]["status"] != "fail"


def test_a_group_under_the_minimum_size_is_insufficient(reference_and_baseline):
    frame, scores, labels, groups = scenario(10, 2000)
    groups.loc[groups.index[:1990], "race"] = "a"  # ten rows of other races, under min_group_size 30
    results = run(reference_and_baseline, frame, scores, labels, groups)
    small = results["fairness:false_positive_rate:race=b"]
    assert small["status"] == "insufficient" and "30" in small["message"]
    assert results["fairness:false_positive_rate:race=a"]["status"] in {"pass", "warn"}


def test_an_accuracy_drop_beyond_the_tolerance_fails(reference_and_baseline):
    frame, scores, labels, groups = scenario(11, 4000)
    flipped = np.random.default_rng(0).random(4000) < 0.3  # the world changed: 30% of labels no longer match
    results = run(reference_and_baseline, frame, scores, np.where(flipped, 1 - labels, labels), groups)
    accuracy = results["performance:accuracy"]
    assert accuracy["status"] == "fail"
    assert accuracy["threshold"] == pytest.approx(reference_and_baseline[1]["overall"]["accuracy"] - 0.05)
    assert accuracy["interval"][1] < accuracy["threshold"]


def test_disabled_monitors_are_not_run(reference_and_baseline):
    plan = default_plan()
    for family in ("data_drift", "fairness", "privacy"):
        plan["monitors"][family]["enabled"] = False
    results = run(reference_and_baseline, *scenario(12, 1000), plan=plan)
    assert {r["family"] for r in results.values()} == {"prediction_drift", "data_quality", "performance"}


@pytest.mark.parametrize(
    ("withdrawn", "status"),
    [(0, "pass"), (20, "warn"), (201, "fail")],  # 20 000 people, limit 1%
)
def test_consent_withdrawn_since_training(reference_and_baseline, withdrawn, status):
    privacy = {**PRIVACY_OK, "withdrawn_since_training": withdrawn}
    result = run(reference_and_baseline, *scenario(13, 600), privacy=privacy)["privacy:withdrawn_share"]
    assert result["status"] == status and result["value"] == pytest.approx(withdrawn / 20_000)
    assert str(withdrawn) in result["message"]


def test_passed_retention_dates_and_an_exhausted_budget_fail(reference_and_baseline):
    privacy = {
        **PRIVACY_OK,
        "retention_passed": ["2025-03-01", "2024-11-30"],
        "budget": {"epsilon_cap": 4.0, "composed_spent": 4.5},
    }
    results = run(reference_and_baseline, *scenario(14, 600), privacy=privacy)
    assert results["privacy:retention"]["status"] == "fail" and "2024-11-30" in results["privacy:retention"]["message"]
    assert results["privacy:budget"]["status"] == "fail" and results["privacy:budget"]["value"] < 0
    nearly = {**PRIVACY_OK, "budget": {"epsilon_cap": 4.0, "composed_spent": 3.8}}
    assert run(reference_and_baseline, *scenario(14, 600), privacy=nearly)["privacy:budget"]["status"] == "warn"


def test_without_privacy_facts_the_privacy_monitors_are_insufficient(reference_and_baseline):
    results = run(reference_and_baseline, *scenario(15, 600), privacy=None)
    privacy = [r for r in results.values() if r["family"] == "privacy"]
    assert len(privacy) == 3 and {r["status"] for r in privacy} == {"insufficient"}
