"""The training reference (aggregates only) and the window sketch (mergeable, JSON round trip), and the sketch's
drift statistics against the exact ones on the raw window, within the bounds drift.py documents."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.workers.engine.monitoring.conftest import FEATURES, make_rows
from workers.engine.monitoring.drift import drift_exact, drift_from_sketch, psi
from workers.engine.monitoring.reference import build_reference
from workers.engine.monitoring.sketch import RARE_UNSEEN, WindowSketch, parse_group_key


@pytest.fixture(scope="module")
def reference(training):
    scores = np.random.default_rng(0).beta(2, 3, len(training))
    return build_reference(training, features=FEATURES, scores=scores)


def sketch_of(reference, frame, chunk=None, **extra):
    sketch = WindowSketch.empty(reference)
    chunk = chunk or len(frame)
    for start in range(0, len(frame), chunk):
        part = {name: values[start : start + chunk] for name, values in extra.items()}
        sketch.add(frame.iloc[start : start + chunk], **part)
    return sketch


def test_reference_is_json_and_holds_no_extreme_training_value(reference, training):
    text = json.dumps(reference)
    assert reference["version"] == 1 and reference["rows"] == len(training)
    for name in ("income",):
        values = training[name].dropna()
        for extreme in (values.min(), values.max()):
            assert repr(float(extreme)) not in text
        profile = reference["features"][name]
        low, high = profile["expected_range"]
        assert values.min() < low < high < values.max()
        assert low == pytest.approx(values.quantile(0.005)) and high == pytest.approx(values.quantile(0.995))


@pytest.mark.parametrize("rows", [25, 201, 500])
def test_a_small_reference_publishes_no_range_end_with_fewer_than_min_cell_rows_beyond_it(rows):
    # Distinct incomes with one outlier: the 0.5% / 99.5% quantiles of 201 rows are the second smallest and second
    # largest incomes, two people's exact values.
    values = np.round(np.random.default_rng(rows).lognormal(10, 0.5, rows), 2)
    values[0] = 1_000_000.0
    reference = build_reference(pd.DataFrame({"income": values}), features={"income": "numeric"}, min_cell=10)
    low, high = reference["features"]["income"]["expected_range"]
    assert (values < low).sum() >= 10 and (values > high).sum() >= 10
    assert reference["features"]["income"]["outside_range_share"] == pytest.approx(
        ((values < low) | (values > high)).mean()
    )


def test_grid_cells_each_hold_enough_training_rows(training):
    reference = build_reference(training, features={"income": "numeric"}, min_cell=25, grid=1000)
    profile = reference["features"]["income"]
    count = profile["count"]
    cells = np.round(np.asarray(profile["cell_proportions"]) * count).astype(int)
    open_between_points = cells[2:-1:2] + cells[1:-2:2]  # each point with the open cell above it
    assert open_between_points.min() >= 2 * 25
    assert cells[0] >= 25 and cells[-1] >= 25
    assert profile["grid_size"] < 1000  # reduced from the request so the cells are large enough
    assert set(profile["psi_edges"]) <= set(profile["quantiles"])
    deciles = training["income"].dropna().quantile(np.arange(1, 10) / 10).to_numpy()
    assert np.abs(np.asarray(profile["psi_edges"]) - deciles).max() < np.diff(profile["quantiles"]).max() * 2


def test_rare_training_categories_are_merged_without_their_names(reference, training):
    profile = reference["features"]["workclass"]
    assert "unpaid" not in profile["categories"] and "unpaid" not in json.dumps(reference)
    share = (training["workclass"] == "unpaid").sum() / training["workclass"].notna().sum()
    assert 0 < profile["other_share"] == pytest.approx(share)
    assert sum(profile["proportions"]) == pytest.approx(1.0)


def assert_same_counts(left, right):
    """Equal sketches: every count exactly, sums of floats up to rounding (they are added in another order)."""
    if isinstance(left, dict):
        assert left.keys() == right.keys()
        for key in left:
            assert_same_counts(left[key], right[key])
    elif isinstance(left, list):
        assert len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            assert_same_counts(a, b)
    elif isinstance(left, float):
        assert left == pytest.approx(right, rel=1e-12)
    else:
        assert left == right


def test_two_halves_merged_equal_the_whole_and_survive_json(reference):
    window = make_rows(3, 6000, shift=0.1, new_region=0.05)
    rng = np.random.default_rng(4)
    extra = {
        "scores": rng.random(6000),
        "labels": rng.integers(0, 2, 6000),
        "groups": pd.DataFrame({"sex": rng.choice(["F", "M"], 6000), "race": rng.choice(["a", "b", None], 6000)}),
    }
    whole = sketch_of(reference, window, **extra).to_dict()
    first = sketch_of(reference, window.iloc[:2500], **{k: v[:2500] for k, v in extra.items()})
    second = sketch_of(reference, window.iloc[2500:], **{k: v[2500:] for k, v in extra.items()})
    assert_same_counts(json.loads(json.dumps(first.merge(second).to_dict())), whole)
    assert_same_counts(sketch_of(reference, window, chunk=777, **extra).to_dict(), whole)
    assert whole["confusion"]["(all)"]["tp"] > 0 and "race=(missing)|sex=F" in whole["confusion"]
    restored = WindowSketch.from_dict(reference, json.loads(json.dumps(whole)))
    assert restored.to_dict() == whole


def test_sketch_counts_match_the_raw_window(reference):
    window = make_rows(6, 3000)
    sketch = sketch_of(reference, window).to_dict()
    income = window["income"].dropna()
    state = sketch["numeric"]["income"]
    assert state["count"] == len(income) and state["missing"] == window["income"].isna().sum()
    low, high = reference["features"]["income"]["expected_range"]
    assert state["below_range"] == (income < low).sum() and state["above_range"] == (income > high).sum()
    assert sum(state["cells"]) == len(income)
    region = sketch["categorical"]["region"]
    expected = window["region"].value_counts()
    categories = reference["features"]["region"]["categories"]
    assert region["counts"] == [int(expected[name]) for name in categories]


def test_unseen_names_are_kept_only_when_seen_min_cell_times(reference):
    window = make_rows(7, 2000)
    window.loc[:14, "region"] = "atlantis"  # 15 rows: named
    window.loc[15:18, "region"] = "lemuria"  # 4 rows: counted, not named
    stored = sketch_of(reference, window).to_dict()["categorical"]["region"]
    assert stored["unseen"] == {"atlantis": 15}
    assert stored["rare_unseen"] == 4
    assert "lemuria" not in json.dumps(stored) and RARE_UNSEEN not in stored["unseen"]


def test_an_absent_column_counts_as_missing_and_as_a_schema_problem(reference):
    window = make_rows(8, 1000).drop(columns=["age"]).assign(national_id="x")
    sketch = sketch_of(reference, window)
    assert sketch.numeric["age"].absent == 1000 and sketch.numeric["age"].missing == 1000
    assert sketch.unexpected_columns == {"national_id"}


def test_group_keys_cover_attributes_and_intersections_and_parse_back(reference):
    groups = pd.DataFrame({"sex": ["F", "M", "F", None], "race|x": ["a", "b", "a", "b"]})
    sketch = WindowSketch.empty(reference).add_labels(np.array([1, 0, 1, 1]), np.array([1, 1, 0, 1]), groups)
    keys = set(sketch.confusion)
    assert {"sex=F", "sex=M", "sex=(missing)", "race\\|x=a", "race\\|x=b"} <= keys
    assert "race\\|x=a|sex=F" in keys
    assert parse_group_key("race\\|x=a|sex=F") == [("race|x", "a"), ("sex", "F")]
    assert sketch.confusion["sex=F"].tolist() == [0, 1, 0, 1]  # one false positive, one true positive
    assert sketch.labelled == 4


@pytest.mark.parametrize(("seed", "shift"), [(11, 0.0), (12, 0.15), (13, 1.0)])
def test_sketch_drift_is_within_the_documented_bounds_of_the_exact_statistics(reference, training, seed, shift):
    window = make_rows(seed, 30_000, shift=shift)
    sketched = {entry["feature"]: entry for entry in drift_from_sketch(reference, sketch_of(reference, window, 7000))}
    exact = drift_exact(training, window, FEATURES)
    for name in ("income", "age", "hours"):
        entry = sketched[name]
        ks_exact = stats.ks_2samp(training[name].dropna(), window[name].dropna()).statistic
        low, high = entry["ks_statistic_bounds"]
        assert low - 1e-12 <= ks_exact <= high + 1e-12, (name, low, ks_exact, high)
        w_exact = stats.wasserstein_distance(training[name].dropna(), window[name].dropna())
        w_low, w_high = entry["wasserstein_bounds"]
        assert w_low - 1e-9 <= w_exact <= w_high + 1e-9, (name, w_low, w_exact, w_high)
        assert entry["psi"] == pytest.approx(exact[name]["psi"], abs=1e-12)  # same bins: exact
    # A discrete feature whose values are all grid points loses nothing to the grid.
    assert sketched["hours"]["ks_statistic_bounds"][0] == pytest.approx(sketched["hours"]["ks_statistic_bounds"][1])
    # For the continuous feature the KS bound is about one grid cell wide.
    width = np.diff(sketched["income"]["ks_statistic_bounds"])[0]
    assert width <= 3 / reference["features"]["income"]["grid_size"]


def test_sketch_categorical_drift_equals_scipy_on_the_bucketed_counts(reference):
    window = make_rows(14, 8000, new_region=0.04)
    entry = {e["feature"]: e for e in drift_from_sketch(reference, sketch_of(reference, window))}["region"]
    profile = reference["features"]["region"]
    named = window["region"].dropna()
    counts = np.array(
        [(named == name).sum() for name in profile["categories"]] + [(~named.isin(profile["categories"])).sum()]
    )
    shares = np.asarray(profile["proportions"])
    kept = shares > 0
    expected = stats.chisquare(counts[kept], shares[kept] / shares[kept].sum() * counts[kept].sum())
    assert entry["chi_square"] == pytest.approx(expected.statistic, rel=1e-9)
    assert entry["psi"] == pytest.approx(psi(shares, counts / counts.sum()), abs=1e-12)
    assert entry["new_categories"].keys() == {"island", "abroad"}


def test_prediction_scores_are_sketched_on_their_own_grid(reference):
    window = make_rows(15, 4000)
    scores = np.random.default_rng(1).beta(5, 2, 4000)  # the model now scores much higher
    sketch = sketch_of(reference, window, scores=scores)
    assert sketch.prediction.count == 4000
    assert sketch.predicted_rows == 4000 and sketch.predicted_positive == int((scores >= 0.5).sum())


def test_labels_arriving_later_give_the_same_counts_as_labels_at_once(reference):
    window = make_rows(16, 1000)
    rng = np.random.default_rng(2)
    predictions, labels = rng.integers(0, 2, 1000), rng.integers(0, 2, 1000)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], 1000)})
    at_once = sketch_of(reference, window, predictions=predictions, labels=labels, groups=groups).to_dict()
    later = sketch_of(reference, window, predictions=predictions)
    later.add_labels(predictions[:400], labels[:400], groups.iloc[:400])
    later.add_labels(predictions[400:], labels[400:], groups.iloc[400:])
    assert later.to_dict() == at_once


def test_a_sketch_of_another_reference_is_refused(reference, training):
    other = build_reference(training, features=FEATURES, grid=50)
    data = WindowSketch.empty(reference).to_dict()
    with pytest.raises(ValueError, match="grid does not match"):
        WindowSketch.from_dict(other, data)


def test_a_tail_too_small_to_publish_leaves_the_wasserstein_bound_open():
    rng = np.random.default_rng(3)
    # 3 people at 0, then a heap at 10 that the lowest grid points land on: the tail below the grid holds 3 rows.
    values = np.concatenate([[0.0, 0.0, 0.0], np.full(500, 10.0), 10 + rng.exponential(5, 9500)])
    reference = build_reference(pd.DataFrame({"v": values}), features={"v": "numeric"})
    profile = reference["features"]["v"]
    assert profile["points"][0] == 10.0 and profile["tail_means"][0] is None
    assert min(profile["quantiles"]) == 10.0 and profile["expected_range"][0] == 10.0  # the three zeros: nowhere
    window = pd.DataFrame({"v": 10 + rng.exponential(5, 2000)})
    entry = drift_from_sketch(reference, sketch_of(reference, window))[0]
    assert entry["wasserstein_bounds"] is None and entry["wasserstein"] > 0
