"""Perturbations of raw rows (before preprocessing) and the layout of the transformed input.

Every random perturbation draws from the numpy Generator it is given: this is a test of the model, not privacy
noise, so it is seeded and reproducible. Only the model's feature columns change; the caller keeps the original rows
for grouping (a person's group is what it is, whatever the model is shown).

What the preprocessing (``workers.engine.training.data.transform``) does with the results:
- numeric values are clipped to the training 1st..99th percentiles, then standardised; a missing numeric value
  becomes the training mean (0 after scaling);
- a category is compared by its text; one outside the training categories (or a missing value whose text, "nan" or
  "None", was not a training category) goes to the extra "unknown" column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers.engine.explain.attributions import feature_columns
from workers.engine.training.data import PreprocessSpec


def continuous_mask(spec: PreprocessSpec) -> np.ndarray:
    """float32 vector over the transformed columns: 1 for a standardised numeric feature, 0 for a one-hot column."""
    mask = np.zeros(spec.input_width, np.float32)
    for name, cols in feature_columns(spec):
        if name in spec.numeric:
            mask[cols] = 1.0
    return mask


def input_bounds(spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per transformed column, the range ``transform`` can produce: the scaled clipping range of a numeric feature
    (values beyond it cannot come from any raw input), [0, 1] for a one-hot column."""
    low, high = np.zeros(spec.input_width, np.float32), np.ones(spec.input_width, np.float32)
    for name, cols in feature_columns(spec):
        if name in spec.numeric:
            stats = spec.numeric[name]
            low[cols] = (stats["low"] - stats["mean"]) / stats["std"]
            high[cols] = (stats["high"] - stats["mean"]) / stats["std"]
    return low, high


def gaussian_noise(rows: pd.DataFrame, spec: PreprocessSpec, *, scale: float, rng: np.random.Generator) -> pd.DataFrame:
    """Adds N(0, (scale * std)^2) to every numeric feature, std being that feature's training standard deviation.
    Missing values stay missing."""
    out = rows.copy()
    for name, stats in spec.numeric.items():
        values = out[name].astype(float).to_numpy()
        out[name] = values + rng.normal(0.0, scale * stats["std"], len(values))
    return out


def category_flip(rows: pd.DataFrame, spec: PreprocessSpec, *, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    """Each categorical cell, independently with probability ``rate``, becomes another training category chosen
    uniformly (a value outside the training categories may become any of them). A feature with one category cannot
    flip."""
    out = rows.copy()
    for name, categories in spec.categorical.items():
        values = out[name].astype(str).to_numpy(dtype=object)
        count = len(categories)
        index = {value: i for i, value in enumerate(categories)}
        current = np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))
        known = current >= 0
        choices = count - known.astype(np.int64)  # the other categories; all of them for an unknown value
        chosen = (rng.random(len(values)) < rate) & (choices > 0)
        draw = np.floor(rng.random(len(values)) * np.maximum(choices, 1)).astype(np.int64)
        draw = np.where(known & (draw >= current), draw + 1, draw)  # skip the current category
        if chosen.any():
            picked = np.asarray(categories, dtype=object)[draw[chosen]]
            values[chosen] = picked
        out[name] = values
    return out


def _missing_marker(series: pd.Series, categories: list[str]) -> Any:
    """The missing value this column already uses (so it maps where the training rows' missing values mapped);
    otherwise one whose text was a training category; otherwise NaN (then: the unknown column)."""
    present = series[series.isna()]
    if len(present):
        return present.iloc[0]
    for marker in (np.nan, None, pd.NA):
        if str(marker) in categories:
            return marker
    return np.nan


def inject_missing(rows: pd.DataFrame, spec: PreprocessSpec, *, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    """Each feature cell, independently with probability ``rate``, becomes missing."""
    out = rows.copy()
    for name in spec.feature_order:
        chosen = rng.random(len(out)) < rate
        if name in spec.numeric:
            values = out[name].astype(float).to_numpy(copy=True)
            values[chosen] = np.nan
        else:
            marker = _missing_marker(out[name], spec.categorical[name])
            values = out[name].to_numpy(dtype=object, copy=True)
            values[chosen] = marker
        out[name] = values
    return out
