"""The exponentiated-gradient reduction against fairlearn's ExponentiatedGradient, with scikit-learn's logistic
regression (sample weights) as the learner on both sides, on an Adult subset."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from workers.engine.mitigation.reductions import exponentiated_gradient, mixture_positive_probability

COLUMNS = [
    "age",
    "education-num",
    "hours-per-week",
    "capital-gain",
    "capital-loss",
    "marital-status",
    "occupation",
    "relationship",
    "sex",
]
MOMENTS = {"demographic_parity": DemographicParity, "equalized_odds": EqualizedOdds}


@pytest.fixture(scope="module")
def adult():
    frame = pd.read_csv("data/adult.csv", nrows=5000)
    X = StandardScaler().fit_transform(pd.get_dummies(frame[COLUMNS], dtype=float).to_numpy())
    y = (frame["class"] == ">50K").astype(int).to_numpy()
    sex = frame["sex"].to_numpy()
    return {"train": (X[:3000], y[:3000], sex[:3000]), "test": (X[3000:], y[3000:], sex[3000:])}


def estimator():
    return LogisticRegression(max_iter=1000)


def learner_on(X):
    def fit_weighted(sample_weight, labels):
        return estimator().fit(X, labels, sample_weight=sample_weight).predict

    return fit_weighted


def disparity(constraint, y, predicted, sex):
    """Between-group disparity of (expected) predictions, with fairlearn's metric functions."""
    if constraint == "demographic_parity":
        return demographic_parity_difference(y, predicted, sensitive_features=sex)
    # Expected rates of a randomised classifier: fairlearn's metrics take 0/1 predictions, so weight the rows.
    rates = []
    for label in (0, 1):
        rows = y == label
        by_group = [predicted[rows & (sex == g)].mean() for g in np.unique(sex)]
        rates.append(max(by_group) - min(by_group))
    return max(rates)


def expected_accuracy(y, probability):
    return float(np.mean(y * probability + (1 - y) * (1 - probability)))


@pytest.mark.slow
@pytest.mark.parametrize("constraint", ["demographic_parity", "equalized_odds"])
def test_the_reduction_matches_fairlearn_and_lowers_disparity(adult, constraint):
    X, y, sex = adult["train"]
    X_test, y_test, sex_test = adult["test"]
    ours = exponentiated_gradient(learner_on(X), X, y, sex, constraint=constraint, eps=0.01, max_iter=10)
    theirs = ExponentiatedGradient(
        estimator(), MOMENTS[constraint](difference_bound=0.01), eps=0.01, max_iter=10, eta0=2.0
    ).fit(X, y, sensitive_features=sex)
    ours_p = mixture_positive_probability(ours, X_test)
    theirs_p = theirs._pmf_predict(X_test)[:, 1]
    assert expected_accuracy(y_test, ours_p) == pytest.approx(expected_accuracy(y_test, theirs_p), abs=0.02)
    assert disparity(constraint, y_test, ours_p, sex_test) == pytest.approx(
        disparity(constraint, y_test, theirs_p, sex_test), abs=0.02
    )
    # On the training rows, the moment eps bounds, as fairlearn computes it for its mixture.
    theirs_train = theirs.constraints_.gamma(lambda rows: theirs._pmf_predict(rows)[:, 1]).max()
    assert ours["disparity"] == pytest.approx(theirs_train, abs=0.02)
    assert ours["best_gap"] == pytest.approx(theirs.best_gap_, abs=1e-3)
    # Mitigation worked: less disparity on held-out rows than the unmitigated model's.
    unmitigated = estimator().fit(X, y).predict(X_test).astype(float)
    assert disparity(constraint, y_test, ours_p, sex_test) < disparity(constraint, y_test, unmitigated, sex_test) - 0.03
    if constraint == "equalized_odds":
        assert disparity(constraint, y_test, unmitigated, sex_test) == pytest.approx(
            equalized_odds_difference(y_test, unmitigated, sensitive_features=sex_test), abs=1e-12
        )
    # The same best responses were asked for; the cache only saves repeated training runs.
    assert ours["oracle_calls"] == theirs.n_oracle_calls_
    assert ours["calls"] <= ours["oracle_calls"] - ours["constant_predictors"]
    assert len(ours["weights"]) == len(ours["predictors"]) and ours["weights"].sum() == pytest.approx(1.0)


class CountingLearner:
    """Logistic regression that records every training run and the labels it was given."""

    def __init__(self, X):
        self.X, self.runs, self.labels = X, 0, []

    def __call__(self, sample_weight, labels):
        self.runs += 1
        self.labels.append(labels.copy())
        assert sample_weight.min() >= 0 and sample_weight.mean() == pytest.approx(1.0)
        return estimator().fit(self.X, labels, sample_weight=sample_weight).predict


@pytest.fixture(scope="module")
def small(adult):
    X, y, sex = adult["train"]
    return X[:1500], y[:1500], sex[:1500]


def test_calls_count_the_training_runs_and_the_learner_gets_the_reductions_labels(small):
    X, y, sex = small
    learner = CountingLearner(X)
    result = exponentiated_gradient(learner, X, y, sex, constraint="demographic_parity", max_iter=4)
    assert result["calls"] == learner.runs > 1
    assert result["history"][-1]["calls"] == learner.runs
    # Relabelling is the reduction's point: some run is asked to predict something other than y.
    assert any((labels != y).any() for labels in learner.labels)


def test_max_calls_is_a_hard_cap_on_training_runs(small):
    X, y, sex = small
    learner = CountingLearner(X)
    result = exponentiated_gradient(learner, X, y, sex, constraint="demographic_parity", max_iter=10, max_calls=3)
    assert learner.runs == result["calls"] <= 3
    assert "budget" in result["stopped"]
    probability = mixture_positive_probability(result, X)
    assert ((probability >= 0) & (probability <= 1 + 1e-12)).all()


def test_a_cap_too_small_for_one_iteration_is_refused(small):
    X, y, sex = small
    with pytest.raises(ValueError, match="max_calls=0"):
        exponentiated_gradient(CountingLearner(X), X, y, sex, constraint="demographic_parity", max_calls=0)


def test_unanimous_labels_get_a_constant_predictor_without_training():
    # Everyone positive in one group, everyone negative in the other: under a strong push towards parity the
    # cheaper label of every row is soon the same one. Such a problem is answered by a constant, never trained.
    X = np.arange(40, dtype=float)[:, None]
    y = np.array([1] * 20 + [0] * 20)
    sex = np.array(["a"] * 20 + ["b"] * 20)
    learner = CountingLearner(X)
    result = exponentiated_gradient(learner, X, y, sex, constraint="demographic_parity", eps=0.001, max_iter=6)
    assert result["constant_predictors"] >= 1
    assert (
        result["calls"] == learner.runs == result["oracle_calls"] - result["constant_predictors"] - result["cache_hits"]
    )


def test_bad_inputs_are_refused(small):
    X, y, sex = small
    with pytest.raises(ValueError, match="unknown constraint"):
        exponentiated_gradient(learner_on(X), X, y, sex, constraint="calibration")
    with pytest.raises(ValueError, match="0/1"):
        exponentiated_gradient(learner_on(X), X, y * 2, sex, constraint="demographic_parity")
    with pytest.raises(ValueError, match="one 0/1 label per row"):
        exponentiated_gradient(
            lambda w, labels: lambda rows: np.full(len(rows), 0.5), X, y, sex, constraint="demographic_parity"
        )
