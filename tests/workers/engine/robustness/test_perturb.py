"""Raw-row perturbations and the transformed-input layout they rely on."""

import numpy as np
import pandas as pd
import pytest

from workers.engine.robustness.perturb import (
    category_flip,
    continuous_mask,
    gaussian_noise,
    inject_missing,
    input_bounds,
)
from workers.engine.training.data import fit_preprocess, transform

FEATURES = ["age", "workclass", "education-num", "sex", "hours-per-week", "capital-gain", "constant"]


@pytest.fixture(scope="module")
def adult():
    frame = pd.read_csv("data/adult.csv", nrows=4000)
    frame["constant"] = "same"  # a categorical feature with one category: nothing to flip it to
    frame.loc[:49, "workclass"] = np.nan  # training rows with a missing category ("nan" becomes a category)
    return frame


@pytest.fixture(scope="module")
def spec(adult):
    return fit_preprocess(adult, label="class", features=FEATURES)


def test_the_mask_marks_exactly_the_standardised_numeric_columns(adult, spec):
    mask = continuous_mask(spec)
    inputs = transform(adult, spec)
    assert mask.shape == (inputs.shape[1],) and mask.dtype == np.float32
    assert int(mask.sum()) == len(spec.numeric) == 4
    # One-hot columns hold only 0 and 1 and each block sums to 1 per row; the masked columns are the others.
    onehot = inputs[:, mask == 0]
    assert set(np.unique(onehot)) <= {0.0, 1.0}
    assert onehot.sum(axis=1).tolist() == [3.0] * len(adult)  # workclass, sex, constant: one hot each
    assert len(np.unique(inputs[:, mask == 1][:, 0])) > 2  # age is continuous


def test_bounds_are_the_range_the_preprocessing_can_produce(adult, spec):
    low, high = input_bounds(spec)
    extreme = adult.copy()
    for name in spec.numeric:
        extreme[name] = extreme[name].astype(float)
        extreme.loc[:1, name] = [-1e9, 1e9]  # far outside the training range: transform clips
    inputs = transform(extreme, spec)
    assert (inputs >= low - 1e-6).all() and (inputs <= high + 1e-6).all()
    mask = continuous_mask(spec) == 1
    np.testing.assert_allclose(inputs[0, mask], low[mask], atol=1e-6)
    np.testing.assert_allclose(inputs[1, mask], high[mask], atol=1e-6)


def test_gaussian_noise_is_scaled_by_each_features_training_std(adult, spec):
    noisy = gaussian_noise(adult, spec, scale=0.5, rng=np.random.default_rng(0))
    for name, stats in spec.numeric.items():
        delta = (noisy[name] - adult[name].astype(float)) / stats["std"]
        assert abs(delta.std() - 0.5) < 0.03 and abs(delta.mean()) < 0.03
    for name in spec.categorical:
        assert noisy[name].astype(str).equals(adult[name].astype(str))
    assert noisy["class"].equals(adult["class"])


def test_gaussian_noise_keeps_missing_values_missing(adult, spec):
    holes = adult.copy()
    holes.loc[:9, "age"] = np.nan
    noisy = gaussian_noise(holes, spec, scale=1.0, rng=np.random.default_rng(0))
    assert noisy.loc[:9, "age"].isna().all() and noisy.loc[10:, "age"].notna().all()


def test_category_flips_move_to_another_training_category_at_the_rate(adult, spec):
    flipped = category_flip(adult, spec, rate=0.2, rng=np.random.default_rng(1))
    for name in ("workclass", "sex"):
        before, after = adult[name].astype(str), flipped[name].astype(str)
        changed = before != after
        assert abs(changed.mean() - 0.2) < 0.025
        assert after[changed].isin(spec.categorical[name]).all()
    assert (flipped["constant"] == "same").all()
    for name in spec.numeric:
        assert flipped[name].equals(adult[name])


def test_a_flip_at_rate_one_changes_every_flippable_cell(adult, spec):
    flipped = category_flip(adult, spec, rate=1.0, rng=np.random.default_rng(2))
    assert (flipped["sex"].astype(str) != adult["sex"].astype(str)).all()
    # Two sexes: a flip can only be to the other one.
    assert set(flipped["sex"]) == set(spec.categorical["sex"])


def test_missing_values_become_what_the_preprocessing_makes_of_them(adult, spec):
    holes = inject_missing(adult, spec, rate=1.0, rng=np.random.default_rng(3))
    inputs = transform(holes, spec)
    mask = continuous_mask(spec) == 1
    assert (inputs[:, mask] == 0).all()  # the training mean, standardised
    # workclass had missing training values: they map to that category ("nan"), not to "unknown".
    start = 1  # age comes first
    workclass = spec.categorical["workclass"]
    block = inputs[:, start : start + len(workclass) + 1]
    assert (block[:, workclass.index("nan")] == 1).all()
    # sex never had one: the unknown column.
    sex_start = 1 + len(workclass) + 1 + 1
    sex_block = inputs[:, sex_start : sex_start + len(spec.categorical["sex"]) + 1]
    assert (sex_block[:, -1] == 1).all()


def test_missing_values_are_injected_at_the_rate_per_cell(adult, spec):
    holes = inject_missing(adult, spec, rate=0.1, rng=np.random.default_rng(4))
    for name in FEATURES:
        share = holes[name].isna().mean() - adult[name].isna().mean()
        assert abs(share - 0.1) < 0.02
    assert holes["class"].notna().all()


def test_the_same_generator_state_gives_the_same_perturbation(adult, spec):
    first = category_flip(adult, spec, rate=0.3, rng=np.random.default_rng(7))
    again = category_flip(adult, spec, rate=0.3, rng=np.random.default_rng(7))
    other = category_flip(adult, spec, rate=0.3, rng=np.random.default_rng(8))
    assert first.equals(again)
    assert not first.equals(other)
