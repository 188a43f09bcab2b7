"""Synthetic training and production data shared by the monitoring tests (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

FEATURES = {
    "income": "numeric",
    "age": "numeric",
    "hours": "numeric",
    "workclass": "categorical",
    "region": "categorical",
}


def make_rows(seed: int, n: int, *, shift: float = 0.0, new_region: float = 0.0, missing: float = 0.02) -> pd.DataFrame:
    """Continuous, discrete (many ties) and categorical features with missing values; ``shift`` moves income,
    ``new_region`` is the share of regions never seen in training."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10 + shift, 0.5, n),
            "age": rng.integers(17, 91, n).astype(float),
            "hours": rng.choice([20.0, 38.0, 40.0, 45.0, 60.0], n, p=[0.1, 0.2, 0.5, 0.15, 0.05]),
            "workclass": rng.choice(["private", "public", "self", "unpaid"], n, p=[0.7, 0.2, 0.0995, 0.0005]),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    if new_region:
        fresh = rng.random(n) < new_region
        frame.loc[fresh, "region"] = rng.choice(["island", "abroad"], int(fresh.sum()))
    for column in frame.columns:
        frame.loc[rng.random(n) < missing, column] = np.nan
    return frame


@pytest.fixture(scope="session")
def training() -> pd.DataFrame:
    return make_rows(1, 20_000)
