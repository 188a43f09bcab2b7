"""Per-row sample weights in training (the exponentiated-gradient reduction's learner calls)."""

import numpy as np
import pandas as pd
import pytest
import torch

from workers.engine.training import trainer
from workers.engine.training.data import DataError, stratified_split
from workers.engine.training.trainer import TrainingConfig, train

NUMERIC = ["age", "education-num", "hours-per-week", "capital-gain"]


@pytest.fixture(scope="module")
def adult():
    return pd.read_csv("data/adult.csv", nrows=2000)


class SeededNoNoise:
    """Stands in for the CSPRNG so two private runs can be compared: seeded Poisson masks and zero noise (the
    weighting is what is under test, not the noise)."""

    source = "test"

    def __init__(self) -> None:
        self.generator = torch.Generator().manual_seed(11)

    def poisson_mask(self, n, rate):
        return torch.rand(n, generator=self.generator) < rate

    def noise_like(self, parameters, std):
        return [torch.zeros_like(p) for p in parameters]


def scrambled(frame, rows, seed=0):
    """The frame with the features of ``rows`` shuffled among them, labels left in place: the split (stratified on
    the labels) and each column's values (so the preprocessing, up to rounding) stay; what the rows say about their
    labels does not."""
    out = frame.copy()
    out.loc[rows, NUMERIC] = frame.loc[np.random.default_rng(seed).permutation(rows), NUMERIC].to_numpy()
    return out


def parameters(result):
    return torch.cat([p.detach().flatten() for p in result.model.parameters()])


@pytest.mark.parametrize("private", [False, True])
def test_rows_of_weight_zero_do_not_move_the_model(adult, monkeypatch, private):
    monkeypatch.setattr(trainer, "SecureRandom", SeededNoNoise)
    # Enough steps (about 110) for the rows' contents to matter: the control below checks that they do.
    config = TrainingConfig(
        label="class",
        features=NUMERIC,
        model="logistic_regression",
        epochs=5,
        batch_size=64,
        learning_rate=0.05,
        private=private,
        seed=4,
    )
    train_rows = stratified_split(adult["class"].astype(str).to_numpy(), seed=config.seed)["train"]
    ignored = train_rows[::2]  # half of the training rows
    weights = np.ones(len(adult))
    weights[ignored] = 0.0
    other = scrambled(adult, ignored)
    weighted = parameters(train(adult, config, sample_weight=weights))
    weighted_scrambled = parameters(train(other, config, sample_weight=weights))
    unweighted_scrambled = parameters(train(other, config))
    # What the ignored rows contain makes no difference (beyond the rounding of the preprocessing's means) ...
    assert torch.allclose(weighted, weighted_scrambled, atol=1e-5)
    # ... while it does when they count: the scrambling is not a no-op.
    assert (weighted - unweighted_scrambled).abs().max() > 0.1


def test_weights_of_one_train_exactly_as_no_weights(adult):
    config = TrainingConfig(label="class", features=NUMERIC, epochs=1, private=False, seed=2, hidden=(8,))
    plain = parameters(train(adult, config))
    ones = parameters(train(adult, config, sample_weight=np.ones(len(adult))))
    assert torch.equal(plain, ones)


def test_weights_scale_the_loss_before_clipping(adult, monkeypatch):
    # With a clipping norm far below every row's gradient, each row's contribution is clipped to the norm whether
    # its loss was halved or not: that is what keeps the sensitivity (and the accounting) unchanged.
    monkeypatch.setattr(trainer, "SecureRandom", SeededNoNoise)
    config = TrainingConfig(
        label="class", features=NUMERIC, model="logistic_regression", epochs=1, seed=4, max_grad_norm=1e-6
    )
    halved = parameters(train(adult, config, sample_weight=np.full(len(adult), 0.5)))
    full = parameters(train(adult, config))
    assert torch.allclose(halved, full, atol=1e-6)
    # Whereas unclipped (non-private) training does feel the weights where they differ between rows.
    uneven = np.where(adult["class"] == ">50K", 1.0, 0.2)
    baseline = TrainingConfig(label="class", features=NUMERIC, epochs=1, private=False, seed=4)
    assert not torch.allclose(
        parameters(train(adult, baseline, sample_weight=uneven)), parameters(train(adult, baseline)), atol=1e-3
    )


@pytest.mark.parametrize(
    "weights",
    [np.ones(10), np.full(2000, 1.5), np.full(2000, -0.1), np.full(2000, np.nan)],
    ids=["wrong length", "above one", "negative", "nan"],
)
def test_weights_outside_zero_to_one_or_of_the_wrong_length_are_refused(adult, weights):
    config = TrainingConfig(label="class", features=NUMERIC, epochs=1, private=False)
    with pytest.raises(DataError, match="weight"):
        train(adult, config, sample_weight=weights)
