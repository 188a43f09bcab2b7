"""Group-specific thresholds against fairlearn's ThresholdOptimizer(prefit=True) on the same scores and groups."""

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workers.engine.mitigation.thresholds import (
    apply_group_thresholds,
    fit_group_thresholds,
    positive_probability,
)

CONSTRAINTS = ["demographic_parity", "equalized_odds", "true_positive_rate_parity", "false_positive_rate_parity"]
OBJECTIVES = ["accuracy_score", "balanced_accuracy_score"]


class GivenScores(ClassifierMixin, BaseEstimator):
    """A 'prefit model' whose score is the single input column, so both sides threshold the same numbers."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=float)[:, 0]


@pytest.fixture(scope="module")
def adult():
    frame = pd.read_csv("data/adult.csv", nrows=9000)
    frame["race3"] = frame["race"].where(frame["race"].isin(["White", "Black"]), "Other")
    features = pd.get_dummies(
        frame[["age", "education-num", "hours-per-week", "capital-gain", "marital-status", "occupation"]], dtype=float
    )
    y = (frame["class"] == ">50K").astype(int).to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(features[:4000], y[:4000])
    held_out = frame.iloc[4000:].reset_index(drop=True)
    scores = model.predict_proba(features[4000:])[:, 1]
    return held_out, y[4000:], scores


def fairlearn_fit(scores, y, groups, constraint, objective, grid_size=1000):
    optimizer = ThresholdOptimizer(
        estimator=GivenScores().fit(None, None),
        constraints=constraint,
        objective=objective,
        grid_size=grid_size,
        prefit=True,
        predict_method="decision_function",
    )
    return optimizer.fit(scores[:, None], y, sensitive_features=groups)


def assert_same_thresholds(ours, theirs):
    interpolation = theirs.interpolated_thresholder_.interpolation_dict
    assert set(ours["groups"]) == set(interpolation)
    for group, fitted in ours["groups"].items():
        expected = interpolation[group]
        assert float(fitted["threshold_high"]) == expected.operation0.threshold
        assert float(fitted["threshold_low"]) == expected.operation1.threshold
        assert expected.operation0.operator == expected.operation1.operator == ">"
        assert fitted["p_high"] == pytest.approx(expected.p0, abs=1e-12)
        assert 1 - fitted["p_high"] == pytest.approx(expected.p1, abs=1e-12)
        if "p_ignore" in expected:
            assert fitted["p_ignore"] == pytest.approx(expected.p_ignore, abs=1e-12)
            assert fitted["prediction_constant"] == pytest.approx(expected.prediction_constant, abs=1e-15)
        else:
            assert fitted["p_ignore"] == 0 and fitted["prediction_constant"] is None


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("constraint", CONSTRAINTS)
@pytest.mark.parametrize("attribute", ["sex", "race3"])
def test_thresholds_equal_fairlearns(adult, attribute, constraint, objective):
    rows, y, scores = adult
    groups = rows[attribute].to_numpy()
    ours = fit_group_thresholds(y, scores, groups, constraint=constraint, objective=objective)
    theirs = fairlearn_fit(scores, y, groups, constraint, objective)
    assert_same_thresholds(ours, theirs)
    probability = positive_probability(scores, groups, ours)
    expected = theirs._pmf_predict(scores[:, None], sensitive_features=groups)[:, 1]
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-12)
    # Predictions agree wherever no coin is tossed (equalized odds may randomise most rows, but not all).
    sure = (expected == 0) | (expected == 1)
    assert sure.sum() >= 100
    ours_predicted = apply_group_thresholds(scores, groups, ours, np.random.default_rng(0))
    theirs_predicted = theirs.predict(scores[:, None], sensitive_features=groups, random_state=0)
    np.testing.assert_array_equal(ours_predicted[sure], theirs_predicted[sure])


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_ties_and_a_coarse_grid_match_too(adult, constraint):
    rows, y, scores = adult
    coarse = np.round(scores, 2)  # many tied scores: thresholds sit between distinct values
    groups = rows["race3"].to_numpy()
    ours = fit_group_thresholds(y, coarse, groups, constraint=constraint, grid_size=37)
    assert_same_thresholds(ours, fairlearn_fit(coarse, y, groups, constraint, "accuracy_score", grid_size=37))


def expected_rates(probability, y, groups):
    out = {}
    for group in np.unique(groups):
        rows = groups == group
        out[group] = {
            "selection_rate": probability[rows].mean(),
            "tpr": probability[rows & (y == 1)].mean(),
            "fpr": probability[rows & (y == 0)].mean(),
        }
    return out


@pytest.mark.parametrize(
    ("constraint", "rates"),
    [
        ("demographic_parity", ["selection_rate"]),
        ("true_positive_rate_parity", ["tpr"]),
        ("false_positive_rate_parity", ["fpr"]),
        ("equalized_odds", ["tpr", "fpr"]),
    ],
)
def test_the_constrained_rates_are_equal_across_groups_in_expectation(adult, constraint, rates):
    rows, y, scores = adult
    groups = rows["race3"].to_numpy()
    fitted = fit_group_thresholds(y, scores, groups, constraint=constraint)
    by_group = expected_rates(positive_probability(scores, groups, fitted), y, groups)
    for rate in rates:
        values = [r[rate] for r in by_group.values()]
        assert max(values) - min(values) < 1e-9
    # And the unmitigated model is NOT equal already (otherwise this would prove nothing).
    raw = expected_rates((scores > 0.5).astype(float), y, groups)
    assert max(max(r[rate] for r in raw.values()) - min(r[rate] for r in raw.values()) for rate in rates) > 0.03


def test_an_unseen_group_gets_the_best_group_blind_threshold(adult):
    rows, y, scores = adult
    groups = rows["sex"].to_numpy()
    fitted = fit_group_thresholds(y, scores, groups, constraint="demographic_parity")
    # Brute force: the accuracy of every threshold between distinct scores.
    distinct = np.unique(scores)
    candidates = np.concatenate([[np.inf], (distinct[1:] + distinct[:-1]) / 2, [-np.inf]])
    accuracy = [accuracy_score(y, (scores > t).astype(int)) for t in candidates]
    overall = float(fitted["overall"]["threshold"])
    assert accuracy_score(y, (scores > overall).astype(int)) == pytest.approx(max(accuracy), abs=1e-12)
    assert fitted["overall"]["objective_value"] == pytest.approx(max(accuracy), abs=1e-12)
    newcomers = np.array(["Nonbinary"] * len(scores), dtype=object)
    predicted = apply_group_thresholds(scores, newcomers, fitted, np.random.default_rng(1))
    np.testing.assert_array_equal(predicted, (scores > overall).astype(int))
    # Rows of known groups in the same call keep their own thresholds.
    mixed = groups.astype(object).copy()
    mixed[:10] = "Nonbinary"
    probability = positive_probability(scores, mixed, fitted)
    np.testing.assert_array_equal(probability[:10], (scores[:10] > overall).astype(float))
    np.testing.assert_array_equal(probability[10:], positive_probability(scores[10:], groups[10:], fitted))


def test_the_fit_is_plain_json(adult):
    rows, y, scores = adult
    fitted = fit_group_thresholds(y, scores, rows["sex"].to_numpy(), constraint="equalized_odds")
    restored = json.loads(json.dumps(fitted, allow_nan=False))  # PostgreSQL's JSON has no Infinity or NaN
    groups = rows["sex"].to_numpy()
    np.testing.assert_array_equal(
        positive_probability(scores, groups, restored), positive_probability(scores, groups, fitted)
    )


def test_infinite_thresholds_are_written_as_text():
    # A perfectly separated group: its best cut is above every negative; its lowest hull vertex is -inf.
    y = np.array([0, 0, 1, 1] * 25)
    scores = np.array([0.1, 0.2, 0.8, 0.9] * 25)
    fitted = fit_group_thresholds(y, scores, np.array(["a", "b"] * 50), constraint="demographic_parity", grid_size=4)
    values = [v for g in fitted["groups"].values() for v in (g["threshold_high"], g["threshold_low"])]
    assert all(isinstance(v, float) or v in ("inf", "-inf") for v in values)
    assert "inf" in values  # the cut at selection rate 0.5 interpolates from the +inf vertex (with weight 0)
    json.dumps(fitted, allow_nan=False)


def test_missing_group_values_are_one_group():
    y = np.array([0, 1] * 50)
    scores = np.linspace(0, 1, 100)
    groups = np.array([None, np.nan, "a", "a"] * 25, dtype=object)
    fitted = fit_group_thresholds(y, scores, groups, constraint="demographic_parity")
    assert set(fitted["groups"]) == {"(missing)", "a"}
    assert fitted["groups"]["(missing)"]["count"] == 50


def test_a_group_with_one_label_value_is_refused_by_name():
    y = np.array([0, 1, 0, 0] * 10)
    groups = np.array(["a", "a", "b", "b"] * 10)
    with pytest.raises(ValueError, match="'b' has only negative labels"):
        fit_group_thresholds(y, np.linspace(0, 1, 40), groups, constraint="demographic_parity")


def test_unknown_constraints_and_objectives_are_refused():
    y, scores, groups = np.array([0, 1]), np.array([0.2, 0.8]), np.array(["a", "a"])
    with pytest.raises(ValueError, match="unknown constraint"):
        fit_group_thresholds(y, scores, groups, constraint="calibration")
    with pytest.raises(ValueError, match="unknown objective"):
        fit_group_thresholds(y, scores, groups, constraint="demographic_parity", objective="selection_rate")
