"""Window performance (Wilson intervals) and per-group fairness, checked against fairlearn and scikit-learn."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from scipy import optimize, stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_score, recall_score

from workers.engine.monitoring.performance import performance_metrics, wilson_interval, window_fairness
from workers.engine.monitoring.reference import build_reference
from workers.engine.monitoring.sketch import ALL, WindowSketch

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


def score_test_bounds(successes, trials):
    """The Wilson interval by its definition: the proportions the score test does not reject at 5%."""
    z = stats.norm.ppf(0.975)
    share = successes / trials

    def gap(p):
        return abs(share - p) / np.sqrt(p * (1 - p) / trials) - z

    low = 0.0 if successes == 0 else optimize.brentq(gap, 1e-12, min(share, 1 - 1e-12))
    high = 1.0 if successes == trials else optimize.brentq(gap, max(share, 1e-12), 1 - 1e-12)
    return low, high


@pytest.mark.parametrize(
    ("successes", "trials"), [(0, 10), (3, 10), (37, 40), (57, 200), (199, 200), (12, 12), (5000, 9000)]
)
def test_wilson_interval_is_where_the_score_test_does_not_reject(successes, trials):
    low, high = wilson_interval(successes, trials)
    expected_low, expected_high = score_test_bounds(successes, trials)
    assert low == pytest.approx(expected_low, abs=1e-9) and high == pytest.approx(expected_high, abs=1e-9)
    assert (low == 0.0) == (successes == 0) and (high == 1.0) == (successes == trials)  # exact at the ends


def test_performance_metrics_match_scikit_learn_and_cover_them():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 3000), rng.integers(0, 2, 3000)
    counts = [
        ((y == 0) & (p == 0)).sum(),
        ((y == 0) & (p == 1)).sum(),
        ((y == 1) & (p == 0)).sum(),
        ((y == 1) & (p == 1)).sum(),
    ]
    result = performance_metrics(counts)
    for metric, function in SK.items():
        value = function(y, p)
        assert result[metric]["value"] == pytest.approx(value, abs=TOL), metric
        low, high = result[metric]["interval"]
        assert low < value < high
    assert result["false_positive_rate"]["rows"] == (y == 0).sum()


def test_a_rate_without_a_denominator_has_no_value():
    result = performance_metrics([0, 0, 10, 30])  # no negatives
    assert result["false_positive_rate"] == {"value": None, "interval": None, "rows": 0}
    assert result["recall"]["value"] == pytest.approx(0.75)


@pytest.fixture(scope="module")
def labelled_window():
    rng = np.random.default_rng(5)
    n = 8000
    groups = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c"], n, p=[0.6, 0.35, 0.05])}
    )
    y = rng.integers(0, 2, n)
    # Women get more false positives: a fairness gap to find.
    p = np.where(y == 1, rng.random(n) < 0.8, rng.random(n) < np.where(groups["sex"] == "F", 0.35, 0.15)).astype(int)
    reference = build_reference(pd.DataFrame({"x": rng.random(100)}), features={"x": "numeric"})
    sketch = WindowSketch.empty(reference)
    for start in range(0, n, 3000):  # in batches, as labels arrive
        part = slice(start, start + 3000)
        sketch.add_labels(p[part], y[part], groups.iloc[part])
    return y, p, groups, sketch


def test_window_metrics_per_group_equal_fairlearn_metricframe(labelled_window):
    y, p, groups, sketch = labelled_window
    result = {tuple(g["attributes"]): g for g in window_fairness(sketch.confusion, min_group_size=30)}
    for attributes in (("sex",), ("race",), ("race", "sex")):
        features = groups[list(attributes)].astype(str).agg("|".join, axis=1)
        frame = MetricFrame(metrics=SK, y_true=y, y_pred=p, sensitive_features=features)
        rows = result[attributes]["groups"]
        assert len(rows) == len(frame.by_group)
        for row in rows:
            label = "|".join(row["values"][a] for a in attributes)
            for metric in SK:
                assert row[metric] == pytest.approx(frame.by_group.loc[label, metric], abs=TOL), (metric, label)
            assert row["count"] == (features == label).sum()


def test_window_fairness_metrics_equal_fairlearn_with_intervals_around_them(labelled_window):
    y, p, groups, sketch = labelled_window
    result = {tuple(g["attributes"]): g for g in window_fairness(sketch.confusion, min_group_size=30)}
    for attribute in ("sex", "race"):
        fairness = result[(attribute,)]["fairness"]
        expected = equalized_odds_difference(y, p, sensitive_features=groups[attribute])
        assert fairness["equalized_odds_difference"]["value"] == pytest.approx(expected, abs=TOL)
        low, high = fairness["equalized_odds_difference"]["ci"]
        assert low <= expected <= high
        expected = demographic_parity_difference(y, p, sensitive_features=groups[attribute])
        assert fairness["demographic_parity_difference"]["value"] == pytest.approx(expected, abs=TOL)
    assert sketch.confusion[ALL].sum() == len(y)


def test_groups_under_the_minimum_size_are_not_judged(labelled_window):
    _, _, _, sketch = labelled_window
    race = {tuple(g["attributes"]): g for g in window_fairness(sketch.confusion, min_group_size=1000)}[("race",)]
    too_small = {row["values"]["race"] for row in race["groups"] if row["too_small"]}
    assert too_small == {"c"} and race["judged_groups"] == 2
