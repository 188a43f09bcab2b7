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
    audit = membership_audit(
        member_loss,
        nonmember_loss,
        proven_epsilon=10.0,
        delta=1e-5,
        reference_member_losses=reference(difficulty_members),
        reference_nonmember_losses=reference(difficulty_nonmembers),
    )
    by_name = {a["attack"].split(" ")[0]: a for a in audit["attacks"]}
    assert by_name["calibrated"]["auc"] > 0.9 > by_name["loss"]["auc"]
    assert audit["attack"].startswith("calibrated")
    # The AUC agrees with scikit-learn on the same scores.
    scores = np.r_[
        calibrated_scores(member_loss, reference(difficulty_members)),
        calibrated_scores(nonmember_loss, reference(difficulty_nonmembers)),
    ]
    assert roc_auc_score(np.r_[np.ones(n), np.zeros(n)], scores) > 0.9


def test_constant_references_leave_the_loss_attack_unchanged():
    from workers.engine.evaluation.privacy_audit import membership_audit

    rng = np.random.default_rng(2)
    members, nonmembers = rng.exponential(0.5, 800), rng.exponential(1.0, 800)
    flat = np.ones((3, 800))
    audit = membership_audit(
        members,
        nonmembers,
        proven_epsilon=None,
        delta=1e-5,
        reference_member_losses=flat,
        reference_nonmember_losses=flat,
    )
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
    frame = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], n), "region": rng.choice(["N", "S", "E", "tiny"], n, p=[0.4, 0.4, 0.19, 0.01])}
    )
    # A group where every row has one class: balanced accuracy is its recall alone.
    frame.loc[frame["region"] == "tiny", "sex"] = "F"
    y_true[(frame["region"] == "tiny").to_numpy()] = 2
    groupings = group_codes(frame, ["sex", "region"], intersections=True)
    result = multiclass_by_group(y_true, y_pred, classes, groupings, min_group_size=40)
    by_name = {g["name"]: g for g in result}
    assert list(by_name) == ["sex", "region", "sex x region"]
    for columns, name in ((["sex"], "sex"), (["region"], "region"), (["sex", "region"], "sex x region")):
        frame_metrics = MetricFrame(
            metrics={
                "accuracy": accuracy_score,
                "balanced_accuracy": balanced_accuracy_score,
                "f1_macro": lambda t, p: f1_score(t, p, average="macro", labels=list(range(classes)), zero_division=0),
            },
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=frame[columns] if len(columns) > 1 else frame[columns[0]],
        ).by_group
        for row in by_name[name]["groups"]:
            key = tuple(row["group"].split(" & ")) if len(columns) > 1 else row["group"]
            expected = frame_metrics.loc[key]
            assert row["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
            assert row["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"], abs=1e-9)
            assert row["f1_macro"] == pytest.approx(expected["f1_macro"], abs=1e-9)
    tiny = next(r for r in by_name["region"]["groups"] if r["group"] == "tiny")
    assert tiny["too_small"] is True


# ----------------------------------------------------------------- issue 12, points 4-7: the reference conventions


def _frame_metrics(y, pred, features, **bootstrap):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetricFrame(metrics=SK, y_true=y, y_pred=pred, sensitive_features=features, **bootstrap)


def test_a_ratio_of_zero_over_zero_is_undefined_as_in_fairlearn_and_its_gate_cannot_be_evaluated():
    import json

    rng = np.random.default_rng(4)
    n = 400
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n)})
    y = rng.integers(0, 2, n)
    gates = [
        {"metric": "demographic_parity_ratio", "threshold": 0.8},
        {"metric": "equalized_odds_ratio", "threshold": 0.8},
        {"metric": "demographic_parity_difference", "threshold": 0.2},
    ]
    # Nothing predicted positive: every selection rate is 0, so their ratio is 0/0.
    nothing = evaluate(
        y_true=y, y_score=np.full(n, 0.1), sensitive=sensitive, policy=Policy(["sex"], gates), resamples=50
    )
    assert np.isnan(demographic_parity_ratio(y, np.zeros(n, int), sensitive_features=sensitive["sex"]))
    fair = nothing["groupings"][0]["fairness"]
    assert fair["demographic_parity_ratio"]["value"] is None
    assert "0/0" in fair["demographic_parity_ratio"]["undefined"]
    assert fair["demographic_parity_difference"]["value"] == pytest.approx(
        demographic_parity_difference(y, np.zeros(n, int), sensitive_features=sensitive["sex"]), abs=TOL
    )
    by_metric = {g["metric"]: g for g in nothing["gates"]}
    ratio_gate = by_metric["demographic_parity_ratio"]
    assert ratio_gate["passed"] is None and ratio_gate["status"] == "not evaluable"
    assert ratio_gate["reason"].startswith("cannot be evaluated") and "positive prediction" in ratio_gate["reason"]
    assert by_metric["demographic_parity_difference"]["passed"] is True
    assert nothing["verdict"] == "unknown"  # neither a pass nor a fail
    json.dumps(nothing, allow_nan=False)  # stored as JSON null, never NaN

    # No false positive in any group: the FPR ratio is 0/0 (fairlearn: NaN), so the equalized odds ratio is
    # undefined too. (fairlearn's equalized_odds_ratio takes Python's min over (TPR ratio, NaN) and so returns the TPR
    # ratio; the pair itself is what we compare.)
    score = np.where(y == 1, rng.choice([0.2, 0.9], n), 0.1)
    pred = (score >= 0.5).astype(int)
    pair = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y,
        y_pred=pred,
        sensitive_features=sensitive["sex"],
    ).ratio()
    assert np.isnan(pair["fpr"]) and np.isfinite(pair["tpr"])
    no_fp = evaluate(y_true=y, y_score=score, sensitive=sensitive, policy=Policy(["sex"], gates), resamples=50)
    entry = no_fp["groupings"][0]["fairness"]["equalized_odds_ratio"]
    assert entry["value"] is None and "false positive" in entry["undefined"]
    assert no_fp["groupings"][0]["fairness"]["demographic_parity_ratio"]["value"] == pytest.approx(
        demographic_parity_ratio(y, pred, sensitive_features=sensitive["sex"]), abs=TOL
    )
    eo_gate = {g["metric"]: g for g in no_fp["gates"]}["equalized_odds_ratio"]
    assert eo_gate["passed"] is None and "false positive" in eo_gate["reason"]
    # A failing gate still fails the verdict: an undefined one cannot rescue it.
    failing = evaluate(
        y_true=y,
        y_score=np.full(n, 0.1),
        sensitive=sensitive,
        resamples=20,
        policy=Policy(["sex"], gates + [{"metric": "demographic_parity_difference", "threshold": -1}]),
    )
    assert failing["verdict"] == "fail"


def test_missing_group_values_form_one_group_like_a_single_filled_value_in_fairlearn():
    rng = np.random.default_rng(8)
    n = 600
    kinds = np.array(["a", "b", None, np.nan, pd.NA, ""], dtype=object)
    raw = pd.Series(kinds[rng.integers(0, len(kinds), n)], dtype=object)
    sensitive = pd.DataFrame({"region": raw, "sex": rng.choice(["F", "M"], n)})
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    result = evaluate(
        y_true=y, y_score=score, sensitive=sensitive, policy=Policy(["region", "sex"], [], 10), resamples=20
    )
    region = result["groupings"][0]
    assert [row["group"] for row in region["groups"]] == ["a", "b", "(missing)"]
    filled = raw.where(raw.notna() & (raw != ""), "(missing)")  # fairlearn refuses missing values: fill them once
    frame = _frame_metrics(y, (score >= 0.5).astype(int), filled)
    assert len(frame.by_group) == 3
    for row in region["groups"]:
        for metric in SK:
            assert row[metric] == pytest.approx(frame.by_group.loc[row["group"], metric], abs=TOL)
    assert region["groups"][-1]["values"] == [None] and region["groups"][-1]["count"] == int(
        (filled == "(missing)").sum()
    )
    crossed = result["groupings"][2]
    both = _frame_metrics(y, (score >= 0.5).astype(int), pd.DataFrame({"region": filled, "sex": sensitive["sex"]}))
    assert len(crossed["groups"]) == len(both.by_group.dropna()) == 6
    for row in crossed["groups"]:
        key = ("(missing)" if row["values"][0] is None else row["values"][0], row["values"][1])
        assert row["accuracy"] == pytest.approx(both.by_group.loc[key, "accuracy"], abs=TOL)


def test_intersections_are_keyed_by_values_not_by_joined_labels():
    n = 200
    sensitive = pd.DataFrame({"x": ["a & b", "a"] * (n // 2), "y": ["c", "b & c"] * (n // 2)})
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, n)
    score = rng.random(n)
    result = evaluate(y_true=y, y_score=score, sensitive=sensitive, policy=Policy(["x", "y"], [], 10), resamples=20)
    crossed = result["groupings"][2]
    frame = _frame_metrics(y, (score >= 0.5).astype(int), sensitive).by_group.dropna()
    assert len(crossed["groups"]) == len(frame) == 2  # ("a & b", "c") and ("a", "b & c") stay apart
    assert len({row["group"] for row in crossed["groups"]}) == 2  # and their labels differ
    for row in crossed["groups"]:
        assert row["selection_rate"] == pytest.approx(frame.loc[tuple(row["values"]), "selection_rate"], abs=TOL)


def test_one_and_text_one_are_distinct_unless_the_column_is_normalised():
    n = 300
    rng = np.random.default_rng(10)
    code = pd.Series(np.array([1, "1", 2], dtype=object)[rng.integers(0, 3, n)], dtype=object)
    sensitive = pd.DataFrame({"code": code})
    y = rng.integers(0, 2, n)
    score = rng.random(n)
    pred = (score >= 0.5).astype(int)
    kept = evaluate(y_true=y, y_score=score, sensitive=sensitive, policy=Policy(["code"], [], 10), resamples=20)
    rows = kept["groupings"][0]["groups"]
    frame = _frame_metrics(y, pred, code).by_group
    assert len(rows) == len(frame) == 3 and len({row["group"] for row in rows}) == 3
    for row in rows:
        (value,) = row["values"]
        expected = frame[[type(k) is type(value) and k == value for k in frame.index]]
        assert len(expected) == 1
        assert row["recall"] == pytest.approx(expected["recall"].iloc[0], abs=TOL)
    assert kept["normalised_attributes"] == []
    merged = evaluate(
        y_true=y,
        y_score=score,
        sensitive=sensitive,
        resamples=20,
        policy=Policy(["code"], [], 10, normalised_attributes=["code"]),
    )
    as_text = _frame_metrics(y, pred, code.astype(str)).by_group
    assert [row["group"] for row in merged["groupings"][0]["groups"]] == ["1", "2"]
    for row in merged["groupings"][0]["groups"]:
        assert row["accuracy"] == pytest.approx(as_text.loc[row["group"], "accuracy"], abs=TOL)
    assert merged["normalised_attributes"] == ["code"]  # the page says so


def test_bootstrap_leaves_out_resamples_where_a_metric_is_undefined_and_counts_them():
    from scipy.stats import binom

    n, resamples = 40, 400
    sensitive = pd.DataFrame({"g": ["solo"] + ["rest"] * (n - 1)})
    y = np.r_[1, np.arange(n - 1) % 2]
    score = np.r_[0.9, np.where(np.arange(n - 1) % 3 == 0, 0.9, 0.1)]
    result = evaluate(
        y_true=y, y_score=score, sensitive=sensitive, policy=Policy(["g"], [], 1), seed=2, resamples=resamples
    )
    solo = next(row for row in result["groupings"][0]["groups"] if row["group"] == "solo")
    # fairlearn's bootstrap leaves a group missing from a resample out of its quantiles (NaN, nanquantile).
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate},
        y_true=y,
        y_pred=(score >= 0.5).astype(int),
        sensitive_features=sensitive["g"],
        n_boot=100,
        ci_quantiles=[0.025, 0.975],
        random_state=1,
    )
    low, high = (ci.loc["solo", "selection_rate"] for ci in frame.by_group_ci)
    assert solo["selection_rate_ci"] == pytest.approx([low, high]) == [1.0, 1.0]
    # The group is absent from a resample with probability (1 - 1/n)^n: the count left out is that binomial.
    p_absent = (1 - 1 / n) ** n
    left_out = solo["ci_excluded"]["selection_rate"]
    assert binom.ppf(0.0005, resamples, p_absent) <= left_out <= binom.ppf(0.9995, resamples, p_absent)

    # A ratio that is 0/0 in every resample has no interval (not [0, 0]), and every resample is counted out.
    two = pd.DataFrame({"g": ["a", "b"] * 50})
    y2 = np.tile([0, 1], 50)
    none = evaluate(
        y_true=y2, y_score=np.full(100, 0.1), sensitive=two, policy=Policy(["g"], [], 5), resamples=resamples
    )
    entry = none["groupings"][0]["fairness"]["demographic_parity_ratio"]
    assert entry["ci"] == [None, None] and entry["ci_excluded"] == resamples
    # Partly undefined: one positive prediction in each of two groups of 12; both missing from a resample (the ratio
    # 0/0) with probability (1 - 2/24)^24, and only those resamples are left out.
    pair = pd.DataFrame({"g": ["a"] * 12 + ["b"] * 12})
    score3 = np.zeros(24)
    score3[[0, 12]] = 0.9
    some = evaluate(
        y_true=np.tile([0, 1], 12),
        y_score=score3,
        sensitive=pair,
        policy=Policy(["g"], [], 5),
        seed=3,
        resamples=resamples,
    )
    p_both = (1 - 2 / 24) ** 24
    left_out = some["groupings"][0]["fairness"]["demographic_parity_ratio"]["ci_excluded"]
    assert binom.ppf(0.0005, resamples, p_both) <= left_out <= binom.ppf(0.9995, resamples, p_both)
