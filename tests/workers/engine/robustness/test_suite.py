"""The robustness suite on Adult models, and the robustness gates."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import accuracy_score
from torch import nn

from workers.engine.robustness.gates import (
    evaluate_robustness_gates,
    robustness_gates_of,
    robustness_verdict,
    validate_robustness_gates,
)
from workers.engine.robustness.suite import robustness_suite
from workers.engine.training.data import encode_labels, transform
from workers.engine.training.trainer import TrainingConfig, train

FEATURES = ["age", "workclass", "education-num", "marital-status", "sex", "hours-per-week", "capital-gain"]
POLICY = {
    "sensitive_attributes": ["sex"],
    "intersections": False,
    "min_group_size": 30,
    "gates": [
        {"metric": "demographic_parity_difference", "threshold": 0.1},
        {"metric": "equalized_odds_difference", "threshold": 0.1},
    ],
}


@pytest.fixture(scope="module")
def adult():
    return pd.read_csv("data/adult.csv", nrows=6000)


def trained(adult, kind, label="class", features=FEATURES):
    config = TrainingConfig(label=label, features=features, model=kind, epochs=5, private=False, hidden=(16, 8))
    result = train(adult, config)
    rows = adult.iloc[result.split["test"]]
    return result.model, result.spec, rows, encode_labels(rows, result.spec)


@pytest.fixture(scope="module")
def logistic(adult):
    return trained(adult, "logistic_regression")


@pytest.fixture(scope="module")
def logistic_suite(logistic):
    model, spec, rows, labels = logistic
    return robustness_suite(model, spec, rows, labels=labels, policy=POLICY, seed=5)


def suite_with_gates(model, spec, rows, labels, policy):
    """The suite with its policy's robustness gates judged, as the evaluation job puts them together."""
    suite = robustness_suite(model, spec, rows, labels=labels, policy=policy, seed=5)
    gates = evaluate_robustness_gates(suite, robustness_gates_of(policy))
    return {**suite, "gates": gates, "verdict": robustness_verdict(gates)}


def predictions(model, spec, rows):
    with torch.no_grad():
        return (model(torch.from_numpy(transform(rows, spec)))[:, 0] >= 0).long().numpy()


def test_the_baseline_agrees_with_scikit_learn_and_fairlearn(logistic, logistic_suite):
    model, spec, rows, labels = logistic
    predicted = predictions(model, spec, rows)
    baseline = logistic_suite["baseline"]
    assert baseline["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    sex = rows["sex"].to_numpy()
    fairness = baseline["fairness"]
    assert fairness["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(labels, predicted, sensitive_features=sex), abs=1e-12
    )
    assert fairness["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(labels, predicted, sensitive_features=sex), abs=1e-12
    )


def test_every_kind_runs_at_every_level_with_changes_measured_from_the_baseline(logistic_suite):
    entries = logistic_suite["perturbations"]
    levels = {kind: sorted(e["level"] for e in entries if e["kind"] == kind) for kind in {e["kind"] for e in entries}}
    assert levels == {
        "gaussian_noise": [0.1, 0.25, 0.5],
        "category_flip": [0.05, 0.1, 0.2],
        "missing": [0.05, 0.1, 0.2],
        "fgsm": [0.05, 0.1, 0.25],
        "pgd": [0.05, 0.1, 0.25],
    }
    baseline = logistic_suite["baseline"]
    for entry in entries:
        assert entry["accuracy_drop"] == pytest.approx(baseline["accuracy"] - entry["accuracy"], abs=1e-12)
        assert set(entry["fairness"]) == set(entry["fairness_change"]) == set(baseline["fairness"])
        for metric, value in entry["fairness"].items():
            assert entry["fairness_change"][metric] == pytest.approx(value - baseline["fairness"][metric], abs=1e-12)
    assert logistic_suite["skipped"] == []
    assert logistic_suite["notes"]
    json.dumps(logistic_suite, allow_nan=False)  # stored as JSON (PostgreSQL's has no NaN or Infinity)


def test_fgsm_accuracy_falls_with_eps_on_a_logistic_model(logistic_suite):
    # For a linear model each row's margin falls steadily as eps grows (clipped rows stop, never turn back), so
    # accuracy cannot rise with eps; and a white-box attack must cost something.
    accuracy = [e["accuracy"] for e in logistic_suite["perturbations"] if e["kind"] == "fgsm"]
    assert accuracy == sorted(accuracy, reverse=True)
    assert accuracy[-1] < logistic_suite["baseline"]["accuracy"] - 0.01


def test_a_vanishing_perturbation_changes_nothing_and_a_large_one_costs_accuracy(logistic):
    model, spec, rows, labels = logistic
    suite = robustness_suite(
        model,
        spec,
        rows,
        labels=labels,
        policy=POLICY,
        seed=5,
        noise_scales=(1e-9, 5.0),
        flip_rates=(1.0,),
        missing_rates=(1.0,),
        adversarial_eps=(1e-9,),
    )
    by_kind = {(e["kind"], e["level"]): e for e in suite["perturbations"]}
    for kind in ("gaussian_noise", "fgsm", "pgd"):
        tiny = by_kind[(kind, 1e-9)]
        assert tiny["accuracy_drop"] == 0
        assert all(change == 0 for change in tiny["fairness_change"].values())
    assert by_kind[("gaussian_noise", 5.0)]["accuracy_drop"] > 0.03
    # Every feature missing: one prediction for everybody, so no difference between the sexes at all.
    assert by_kind[("missing", 1.0)]["fairness"]["demographic_parity_difference"] == 0


def test_the_suite_is_reproducible_from_its_seed(logistic, logistic_suite):
    model, spec, rows, labels = logistic
    again = robustness_suite(model, spec, rows, labels=labels, policy=POLICY, seed=5)
    assert again == logistic_suite


def test_levels_named_by_robustness_gates_are_tried_and_judged(logistic):
    model, spec, rows, labels = logistic
    policy = {
        **POLICY,
        "robustness_gates": [
            {"kind": "gaussian_noise", "level": 0.3, "metric": "accuracy_drop", "max": 0.5},
            {"kind": "fgsm", "level": 0.25, "metric": "accuracy_drop", "max": 0.0},
            {"kind": "pgd", "level": 0.1, "metric": "demographic_parity_ratio", "max": 1.0},
        ],
    }
    result = suite_with_gates(model, spec, rows, labels, policy)
    assert any(e["kind"] == "gaussian_noise" and e["level"] == 0.3 for e in result["perturbations"])
    # A ratio named only by a robustness gate is computed too.
    assert "demographic_parity_ratio" in result["baseline"]["fairness"]
    statuses = [g["status"] for g in result["gates"]]
    assert statuses == ["pass", "fail", "pass"]  # FGSM at 0.25 costs accuracy (test above): a zero budget fails
    assert result["verdict"] == "fail"


class NoGradients:
    """A model the suite can score but not differentiate (as a tree ensemble would be)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, inputs):
        with torch.no_grad():
            return self.model(inputs)


def test_adversarial_gates_of_a_model_without_gradients_are_unknown(logistic):
    model, spec, rows, labels = logistic
    policy = {**POLICY, "robustness_gates": [{"kind": "fgsm", "level": 0.1, "metric": "accuracy_drop", "max": 1.0}]}
    result = suite_with_gates(NoGradients(model), spec, rows, labels, policy)
    assert {e["kind"] for e in result["perturbations"]} == {"gaussian_noise", "category_flip", "missing"}
    assert {s["kind"] for s in result["skipped"]} == {"fgsm", "pgd"}
    (gate,) = result["gates"]
    assert gate["status"] == "unknown" and gate["value"] is None
    assert "gradients" in gate["reason"]
    assert result["verdict"] == "unknown"


class StepFunction(nn.Module):
    """Differentiable in form, flat in fact: the gradient of sign() is zero, so an attack has nothing to follow."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return 4 * torch.sign(self.model(inputs))


def test_an_attack_that_moves_nothing_judges_nothing(logistic):
    model, spec, rows, labels = logistic
    policy = {**POLICY, "robustness_gates": [{"kind": "pgd", "level": 0.25, "metric": "accuracy_drop", "max": 1.0}]}
    result = suite_with_gates(StepFunction(model), spec, rows, labels, policy)
    attacks = [e for e in result["perturbations"] if e["kind"] in ("fgsm", "pgd")]
    assert attacks and all(e["moved_share"] == 0 and e["accuracy_drop"] == 0 for e in attacks)
    (gate,) = result["gates"]
    assert gate["status"] == "unknown" and "moved no input" in gate["reason"]
    # The same model's own gradients do move the inputs: the flag is about the step function, not the suite.
    plain = robustness_suite(model, spec, rows, labels=labels, policy=POLICY, seed=5, adversarial_eps=(0.25,))
    assert all(e["moved_share"] > 0.9 and "not_judged" not in e for e in plain["perturbations"] if e["kind"] == "pgd")


def test_a_model_with_only_categorical_features_skips_noise_and_attacks(adult):
    model, spec, rows, labels = trained(adult, "mlp", features=["workclass", "marital-status", "sex"])
    suite = robustness_suite(model, spec, rows, labels=labels, policy=POLICY, seed=1)
    assert {e["kind"] for e in suite["perturbations"]} == {"category_flip", "missing"}
    assert {s["kind"] for s in suite["skipped"]} == {"gaussian_noise", "fgsm", "pgd"}


def test_a_multiclass_model_reports_accuracy_only(adult):
    model, spec, rows, labels = trained(adult, "mlp", label="race", features=["age", "education-num", "sex"])
    assert len(spec.classes) > 2
    suite = robustness_suite(model, spec, rows, labels=labels, policy=POLICY, seed=1, adversarial_eps=(0.5,))
    assert suite["baseline"]["fairness"] == {}
    assert all(e["fairness"] == {} for e in suite["perturbations"])
    with torch.no_grad():
        logits = model(torch.from_numpy(transform(rows, spec))).numpy()
    assert suite["baseline"]["accuracy"] == pytest.approx(float((logits.argmax(axis=1) == labels).mean()))
    assert any("multiclass" in note for note in suite["notes"])


# Gates on hand-made suites: the rules, independent of any model.
SUITE = {
    "baseline": {"accuracy": 0.8, "fairness": {"demographic_parity_difference": 0.1, "demographic_parity_ratio": 0.8}},
    "perturbations": [
        {
            "kind": "gaussian_noise",
            "level": 0.1,
            "accuracy": 0.75,
            "accuracy_drop": 0.05,
            "fairness": {"demographic_parity_difference": 0.16, "demographic_parity_ratio": 0.7},
            "fairness_change": {"demographic_parity_difference": 0.06, "demographic_parity_ratio": -0.1},
        },
        {
            "kind": "missing",
            "level": 0.2,
            "accuracy": 0.7,
            "accuracy_drop": 0.1,
            "fairness": {"demographic_parity_difference": 0.05, "demographic_parity_ratio": None},
            "fairness_change": {"demographic_parity_difference": -0.05, "demographic_parity_ratio": None},
        },
    ],
    "skipped": [{"kind": "fgsm", "reason": "the model has no gradients (adversarial examples need them)"}],
    "notes": [],
}


def gate(kind, level, metric, maximum):
    return {"kind": kind, "level": level, "metric": metric, "max": maximum}


@pytest.mark.parametrize(
    ("spec", "status", "value"),
    [
        (gate("gaussian_noise", 0.1, "accuracy_drop", 0.05), "pass", 0.05),  # at the maximum: pass
        (gate("gaussian_noise", 0.1, "accuracy_drop", 0.04), "fail", 0.05),
        (gate("gaussian_noise", 0.1, "demographic_parity_difference", 0.05), "fail", 0.06),  # a rise
        (gate("missing", 0.2, "demographic_parity_difference", 0.0), "pass", -0.05),  # it fell: no worsening
        (gate("gaussian_noise", 0.1, "demographic_parity_ratio", 0.05), "fail", 0.1),  # a ratio's fall
        (gate("gaussian_noise", 1 / 10, "accuracy_drop", 0.1), "pass", 0.05),  # 1/10 is the level 0.1
        (gate("missing", 0.2, "demographic_parity_ratio", 1.0), "unknown", None),  # undefined under it
        (gate("missing", 0.1, "accuracy_drop", 1.0), "unknown", None),  # a level the suite did not try
        (gate("fgsm", 0.1, "accuracy_drop", 1.0), "unknown", None),  # skipped
        (gate("category_flip", 0.1, "equalized_odds_difference", 1.0), "unknown", None),  # never run
    ],
)
def test_robustness_gates_bound_the_worsening(spec, status, value):
    (result,) = evaluate_robustness_gates(SUITE, [spec])
    assert result["status"] == status
    assert result["value"] == (None if value is None else pytest.approx(value))
    assert {k: result[k] for k in spec} == spec
    assert result["reason"]


def test_an_unknown_gate_quotes_why_the_perturbation_did_not_run():
    (result,) = evaluate_robustness_gates(SUITE, [gate("fgsm", 0.1, "accuracy_drop", 1.0)])
    assert "no gradients" in result["reason"]


def test_the_verdict_fails_on_a_fail_and_is_never_pass_with_an_unknown():
    passing = gate("gaussian_noise", 0.1, "accuracy_drop", 0.5)
    failing = gate("gaussian_noise", 0.1, "accuracy_drop", 0.01)
    unknown = gate("fgsm", 0.1, "accuracy_drop", 0.5)
    assert robustness_verdict(evaluate_robustness_gates(SUITE, [passing])) == "pass"
    assert robustness_verdict(evaluate_robustness_gates(SUITE, [passing, unknown])) == "unknown"
    assert robustness_verdict(evaluate_robustness_gates(SUITE, [unknown, failing])) == "fail"
    assert robustness_verdict([]) == "pass"


def test_well_formed_gates_validate():
    gates = [
        gate("gaussian_noise", 0.5, "accuracy_drop", 0.05),
        gate("category_flip", 0.1, "equalized_odds_ratio", 0.1),
        gate("pgd", 2, "demographic_parity_difference", 0),
    ]
    assert validate_robustness_gates(gates) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not a gate", "must be an object"),
        (gate("rotation", 0.1, "accuracy_drop", 0.1), "unknown kind"),
        (gate("fgsm", 0, "accuracy_drop", 0.1), "level must be a number above 0"),
        (gate("fgsm", True, "accuracy_drop", 0.1), "level must be a number above 0"),
        (gate("fgsm", float("nan"), "accuracy_drop", 0.1), "level must be a number above 0"),
        (gate("missing", 1.5, "accuracy_drop", 0.1), "at most 1"),
        (gate("fgsm", 0.1, "roc_auc", 0.1), "unknown metric"),
        (gate("fgsm", 0.1, "accuracy_drop", -0.1), "max must be"),
        (gate("fgsm", 0.1, "accuracy_drop", "0.1"), "max must be"),
    ],
)
def test_malformed_gates_are_named_with_their_position(bad, message):
    errors = validate_robustness_gates([gate("fgsm", 0.1, "accuracy_drop", 0.1), bad])
    assert len(errors) >= 1
    assert all(e.startswith("robustness_gates[2]: ") for e in errors)
    assert any(message in e for e in errors)


def test_a_gate_given_twice_is_refused():
    errors = validate_robustness_gates(
        [gate("fgsm", 0.1, "accuracy_drop", 0.1), gate("fgsm", 1 / 10, "accuracy_drop", 0.2)]
    )
    assert errors == ["robustness_gates[2]: accuracy_drop under fgsm at level 0.1 is gated twice"]
    assert validate_robustness_gates({"kind": "fgsm"}) == ["robustness gates must be a list"]


def test_robustness_gates_are_found_beside_or_among_the_fairness_gates():
    beside = gate("fgsm", 0.1, "accuracy_drop", 0.1)
    among = gate("missing", 0.1, "accuracy_drop", 0.1)
    policy = {"gates": [{"metric": "demographic_parity_difference", "threshold": 0.1}, among]}
    assert robustness_gates_of({**policy, "robustness_gates": [beside]}) == [beside, among]


def test_the_web_side_can_read_gates_without_loading_torch():
    code = "import sys, workers.engine.robustness.gates; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".")
