"""Tiny Adult models for the explanation tests: a logistic regression and an MLP, trained for a few hundred full-batch
steps of plain torch on 1,500 rows; 1,000 other rows play the held-out set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from workers.engine.training.data import PreprocessSpec, encode_labels, fit_preprocess, transform
from workers.engine.training.models import build_model, loss_per_sample

ADULT = "data/adult.csv"
FEATURES = [
    "age",
    "workclass",
    "education-num",
    "marital-status",
    "occupation",
    "race",
    "sex",
    "hours-per-week",
    "capital-gain",
]


@dataclass
class Trained:
    model: nn.Module
    prep: PreprocessSpec
    held_out: pd.DataFrame

    def inputs(self, rows: pd.DataFrame | None = None) -> np.ndarray:
        return transform(self.held_out if rows is None else rows, self.prep)

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """The model's own float32 logits: the independent reference for f(x)."""
        with torch.no_grad():
            return self.model(torch.as_tensor(inputs, dtype=torch.float32))[:, 0].double().numpy()


def columns_of(prep: PreprocessSpec, feature: str) -> slice:
    """The encoded columns of ``feature``, worked out here from the spec (not with the engine's helper)."""
    start = 0
    for name in prep.feature_order:
        width = 1 if name in prep.numeric else len(prep.categorical[name]) + 1
        if name == feature:
            return slice(start, start + width)
        start += width
    raise KeyError(feature)


def fit(kind: str, features: list[str], *, steps: int = 300, seed: int = 0, hidden=(16, 8)) -> Trained:
    frame = pd.read_csv(ADULT, nrows=2500)
    train_rows, held_out = frame.iloc[:1500], frame.iloc[1500:].reset_index(drop=True)
    prep = fit_preprocess(train_rows, label="class", features=features)
    torch.manual_seed(seed)
    model = build_model(kind, prep.input_width, 2, hidden)
    x = torch.from_numpy(transform(train_rows, prep))
    y = torch.from_numpy(encode_labels(train_rows, prep))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        optimizer.zero_grad()
        loss_per_sample(model(x), y).mean().backward()
        optimizer.step()
    model.eval()
    return Trained(model, prep, held_out)


@pytest.fixture(scope="package")
def logistic() -> Trained:
    return fit("logistic_regression", FEATURES)


@pytest.fixture(scope="package")
def mlp() -> Trained:
    return fit("mlp", FEATURES)


@pytest.fixture(scope="package")
def logistic_without_sex() -> Trained:
    return fit("logistic_regression", [f for f in FEATURES if f != "sex"])
