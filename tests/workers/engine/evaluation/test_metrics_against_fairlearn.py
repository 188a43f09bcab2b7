import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from workers.engine.evaluation.evaluate import Policy, evaluate
from workers.engine.evaluation.metrics import roc_auc
from workers.engine.evaluation.privacy_audit import clopper_pearson, loss_threshold_audit

TOL = 1e-9
SK = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "precision": lambda t, p: precision_score(t, p, zero_division=0),
    "recall": lambda t, p: recall_score(t, p, zero_division=0),
    "f1": lambda t, p: f1_score(t, p, zero_division=0),
    "selection_rate": selection_rate,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
}


def random_case(seed, n=3000):
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c", "d"], n, p=[0.6, 0.3, 0.09, 0.01])}
    )
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    return y, score, sensitive


def check_against_fairlearn(y, score, sensitive, result, min_size):
    pred = (score >= 0.5).astype(int)
    for grouping in result["groupings"]:
        columns = grouping["name"].split(" x ")
        features = (
            sensitive[columns[0]] if len(columns) == 1 else sensitive[columns].astype(str).agg(" & ".join, axis=1)
        )
        frame = MetricFrame(metrics=SK, y_true=y, y_pred=pred, sensitive_features=features)
        for row in grouping["groups"]:
            for metric in SK:
                assert row[metric] == pytest.approx(frame.by_group.loc[row["group"], metric], abs=TOL), (metric, row)
        judged = [row["group"] for row in grouping["groups"] if not row["too_small"]]
        mask = features.isin(judged).to_numpy()
        if len(judged) < 2:
            continue
        fair = grouping["fairness"]
        args = dict(y_true=y[mask], y_pred=pred[mask], sensitive_features=features[mask])
        assert fair["demographic_parity_difference"]["value"] == pytest.approx(
            demographic_parity_difference(**args), abs=TOL
        )
        assert fair["demographic_parity_ratio"]["value"] == pytest.approx(demographic_parity_ratio(**args), abs=TOL)
        assert fair["equalized_odds_difference"]["value"] == pytest.approx(equalized_odds_difference(**args), abs=TOL)
        assert fair["equalized_odds_ratio"]["value"] == pytest.approx(equalized_odds_ratio(**args), abs=TOL)
        tpr = MetricFrame(metrics=true_positive_rate, **{**args, "sensitive_features": features[mask]})
        assert fair["equal_opportunity_difference"]["value"] == pytest.approx(tpr.difference(), abs=TOL)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_metric_matches_fairlearn_and_scikit_learn_on_random_data(seed):
    y, score, sensitive = random_case(seed)
    policy = Policy(sensitive_attributes=["sex", "race"], gates=[], min_group_size=20)
    result = evaluate(y_true=y, y_score=score, sensitive=sensitive, policy=policy, seed=seed, resamples=50)
    check_against_fairlearn(y, score, sensitive, result, 20)
    assert result["overall"]["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=TOL)
    small = [row for g in result["groupings"] for row in g["groups"] if row["too_small"]]
    assert small and all(row["count"] < 20 for row in small)  # reported, never silently dropped


def test_single_class_and_tiny_groups_behave_like_scikit_learn():
    y = np.array([1, 1, 1, 0, 0, 1, 0, 0, 1, 1])
    score = np.array([0.9, 0.2, 0.8, 0.1, 0.7, 0.6, 0.3, 0.4, 0.9, 0.1])
    sensitive = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "b", "b", "b", "c", "c"]})  # group a and c: one class
    result = evaluate(
        y_true=y, y_score=score, sensitive=sensitive, policy=Policy(["g"], gates=[], min_group_size=1), resamples=10
    )
    check_against_fairlearn(y, score, sensitive, result, 1)
    rows = {row["group"]: row for row in result["groupings"][0]["groups"]}
    assert rows["a"]["roc_auc"] is None  # AUC is undefined with one class


def test_metrics_on_adult_predictions_of_a_real_model():
    frame = pd.read_csv("data/adult.csv", nrows=5000)
    x = pd.get_dummies(frame[["age", "education-num", "hours-per-week", "sex", "marital-status"]], dtype=float)
    y = (frame["class"] == ">50K").astype(int).to_numpy()
    score = LogisticRegression(max_iter=500).fit(x, y).predict_proba(x)[:, 1]
    policy = Policy(
        ["sex", "race"], gates=[{"metric": "demographic_parity_difference", "threshold": 0.1}], min_group_size=30
    )
    result = evaluate(y_true=y, y_score=score, sensitive=frame[["sex", "race"]], policy=policy, resamples=100)
    check_against_fairlearn(y, score, frame[["sex", "race"]], result, 30)
    gate = result["gates"][0]
    assert gate["value"] == pytest.approx(
        max(
            g["fairness"]["demographic_parity_difference"]["value"]
            for g in result["groupings"]
            if g["fairness"]["demographic_parity_difference"]["value"] is not None
        )
    )
    assert gate["passed"] == (gate["value"] <= 0.1)


def test_bootstrap_is_reproducible_and_intervals_contain_the_estimate():
    y, score, sensitive = random_case(7, n=5000)
    policy = Policy(["sex"], gates=[], min_group_size=10)
    first = evaluate(y_true=y, y_score=score, sensitive=sensitive, policy=policy, seed=11, resamples=200)
    second = evaluate(y_true=y, y_score=score, sensitive=sensitive, policy=policy, seed=11, resamples=200)
    assert first == second
    for row in first["groupings"][0]["groups"]:
        low, high = row["accuracy_ci"]
        assert low <= row["accuracy"] <= high and high - low < 0.1


def test_a_stricter_threshold_turns_a_gate_red():
    y, score, sensitive = random_case(5)
    loose = evaluate(
        y_true=y,
        y_score=score,
        sensitive=sensitive,
        resamples=20,
        policy=Policy(["sex"], [{"metric": "demographic_parity_difference", "threshold": 0.5}]),
    )
    value = loose["gates"][0]["value"]
    strict = evaluate(
        y_true=y,
        y_score=score,
        sensitive=sensitive,
        resamples=20,
        policy=Policy(["sex"], [{"metric": "demographic_parity_difference", "threshold": value / 2}]),
    )
    assert loose["verdict"] == "pass" and strict["verdict"] == "fail"
    ratio = evaluate(
        y_true=y,
        y_score=score,
        sensitive=sensitive,
        resamples=20,
        policy=Policy(["sex"], [{"metric": "demographic_parity_ratio", "threshold": 0.999}]),
    )
    assert ratio["gates"][0]["passed"] == (ratio["gates"][0]["value"] >= 0.999)


def test_rank_auc_equals_scikit_learn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    score = rng.integers(0, 5, 500) / 4  # many ties
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=TOL)


@pytest.mark.parametrize(("k", "n"), [(0, 50), (3, 50), (50, 50), (17, 1000)])
def test_clopper_pearson_matches_scipy(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert clopper_pearson(k, n) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_the_audit_finds_leakage_in_a_memorising_model_and_none_in_identical_distributions():
    rng = np.random.default_rng(0)
    members = rng.exponential(0.02, 2000)  # near-zero training loss: memorised
    nonmembers = rng.exponential(1.0, 2000)
    leaky = loss_threshold_audit(members, nonmembers, proven_epsilon=1.0, delta=1e-5)
    assert leaky["auc"] > 0.9 and leaky["empirical_epsilon_lower_bound"] > 1.0
    assert leaky["accounting_fault"] is True  # a bound above the proven epsilon is an accounting fault
    same = loss_threshold_audit(rng.exponential(1.0, 2000), rng.exponential(1.0, 2000), proven_epsilon=1.0, delta=1e-5)
    assert abs(same["auc"] - 0.5) < 0.05 and same["empirical_epsilon_lower_bound"] < 0.3
    assert same["accounting_fault"] is False


def test_the_calibrated_attack_separates_members_from_easy_examples():
    """Half the examples are easy (every model has a low loss on them), half hard. Members' losses are a little lower
    than their own difficulty. The raw loss mostly detects 'easy', the calibrated score detects 'member'."""
    from sklearn.metrics import roc_auc_score

    from workers.engine.evaluation.privacy_audit import calibrated_scores, membership_audit

    rng = np.random.default_rng(1)
    n, references = 3000, 6
    difficulty_members = rng.choice([0.05, 2.0], n)
    difficulty_nonmembers = rng.choice([0.05, 2.0], n)

    def reference(difficulty):
        return difficulty * np.exp(rng.normal(0, 0.1, (references, len(difficulty))))

    member_loss = difficulty_members * np.exp(rng.normal(-0.3, 0.1, n))
    nonmember_loss = difficulty_nonmembers * np.exp(rng.normal(0, 0.1, n))
    audit = membership_audit(member_loss, nonmember_loss, proven_epsilon=10.0, delta=1e-5,
                             reference_member_losses=reference(difficulty_members),
                             reference_nonmember_losses=reference(difficulty_nonmembers))
    by_name = {a["attack"].split(" ")[0]: a for a in audit["attacks"]}
    assert by_name["calibrated"]["auc"] > 0.9 > by_name["loss"]["auc"]
    assert audit["attack"].startswith("calibrated")
    # The AUC agrees with scikit-learn on the same scores.
    scores = np.r_[calibrated_scores(member_loss, reference(difficulty_members)),
                   calibrated_scores(nonmember_loss, reference(difficulty_nonmembers))]
    assert roc_auc_score(np.r_[np.ones(n), np.zeros(n)], scores) > 0.9


def test_constant_references_leave_the_loss_attack_unchanged():
    from workers.engine.evaluation.privacy_audit import membership_audit

    rng = np.random.default_rng(2)
    members, nonmembers = rng.exponential(0.5, 800), rng.exponential(1.0, 800)
    flat = np.ones((3, 800))
    audit = membership_audit(members, nonmembers, proven_epsilon=None, delta=1e-5,
                             reference_member_losses=flat, reference_nonmember_losses=flat)
    loss, calibrated = audit["attacks"]
    assert calibrated["auc"] == pytest.approx(loss["auc"], abs=1e-12)
    assert calibrated["empirical_epsilon_lower_bound"] == pytest.approx(loss["empirical_epsilon_lower_bound"])


def test_multiclass_performance_by_group_matches_metricframe():
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from workers.engine.evaluation.groups import group_codes
    from workers.engine.evaluation.metrics import multiclass_by_group

    rng = np.random.default_rng(5)
    n, classes = 3000, 4
    y_true = rng.integers(0, classes, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, classes, n))
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "region": rng.choice(["N", "S", "E", "tiny"], n,
                                                                                  p=[0.4, 0.4, 0.19, 0.01])})
    # A group where every row has one class: balanced accuracy is its recall alone.
    frame.loc[frame["region"] == "tiny", "sex"] = "F"
    y_true[(frame["region"] == "tiny").to_numpy()] = 2
    groupings = group_codes(frame, ["sex", "region"], intersections=True)
    result = multiclass_by_group(y_true, y_pred, classes, groupings, min_group_size=40)
    by_name = {g["name"]: g for g in result}
    assert list(by_name) == ["sex", "region", "sex x region"]
    for columns, name in ((["sex"], "sex"), (["region"], "region"), (["sex", "region"], "sex x region")):
        frame_metrics = MetricFrame(
            metrics={"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
                     "f1_macro": lambda t, p: f1_score(t, p, average="macro", labels=list(range(classes)),
                                                       zero_division=0)},
            y_true=y_true, y_pred=y_pred, sensitive_features=frame[columns] if len(columns) > 1 else frame[columns[0]],
        ).by_group
        for row in by_name[name]["groups"]:
            key = tuple(row["group"].split(" & ")) if len(columns) > 1 else row["group"]
            expected = frame_metrics.loc[key]
            assert row["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
            assert row["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"], abs=1e-9)
            assert row["f1_macro"] == pytest.approx(expected["f1_macro"], abs=1e-9)
    tiny = next(r for r in by_name["region"]["groups"] if r["group"] == "tiny")
    assert tiny["too_small"] is True
