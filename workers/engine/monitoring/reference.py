"""The training-time reference a deployment is monitored against, built once from the model's training rows.

It is stored in the database, so it holds aggregates only, never a value of one person:
- numeric features: a quantile grid (levels (i + 0.5) / g) with g reduced until every cell between grid points holds
  at least ``2 * min_cell`` training rows and each tail beyond the grid at least ``min_cell``; the share of training
  rows in each grid cell (see ``columns``); the mean of each tail beyond the grid only when it holds at least
  ``min_cell`` rows; PSI bin edges at the training deciles, taken as the grid points nearest them (within one grid
  cell) so a window's grid counts give PSI exactly; the expected range as the 0.5% / 99.5% quantiles, kept within
  the outermost grid points (in a small training set those quantiles lie among the few most extreme values: of 201
  rows, the second smallest and second largest, two people's values); the missing share; mean and standard
  deviation.
- categorical features: the share of each category with at least ``min_cell`` rows; rarer ones are merged into one
  ``(other)`` bucket whose names are not kept; the missing share.
- ``prediction``: the numeric treatment of the predicted positive-class scores, and the positive rate at the threshold.
A feature with fewer than ``2 * min_cell`` usable rows is marked ``insufficient`` and publishes nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers.engine.monitoring.columns import category_codes, cell_bins, cell_counts, numeric_values

VERSION = 1
OTHER = "(other)"
KINDS = ("numeric", "categorical")
PSI_DECILES = 10
EXPECTED_RANGE_LEVELS = (0.005, 0.995)


def grid_size(rows: int, *, min_cell: int, grid: int) -> int:
    """The largest g <= ``grid`` for which linear-interpolation quantiles at levels (i + 0.5) / g leave at least
    ``min_cell`` distinct-valued rows in each tail and ``2 * min_cell`` between neighbouring points."""
    return max(0, min(grid, (rows - 1) // (2 * min_cell)))


def quantile_grid(ordered: np.ndarray, size: int) -> np.ndarray:
    levels = (np.arange(size) + 0.5) / size
    return np.quantile(ordered, levels)


def psi_edges(quantiles: np.ndarray) -> np.ndarray:
    """Grid points nearest the deciles (level within one grid cell above k / 10), distinct."""
    size = len(quantiles)
    if size == 0:
        return np.array([], dtype=float)
    indices = [min(size - 1, (k * size) // PSI_DECILES) for k in range(1, PSI_DECILES)]
    return np.unique(quantiles[indices])


def numeric_profile(values: np.ndarray, *, min_cell: int, grid: int) -> dict[str, Any]:
    """The aggregates of one numeric column (missing = NaN) described in the module docstring."""
    present = np.sort(values[~np.isnan(values)])
    count = len(present)
    profile: dict[str, Any] = {
        "rows": len(values),
        "count": count,
        "missing_share": float((len(values) - count) / len(values)) if len(values) else 0.0,
    }
    size = grid_size(count, min_cell=min_cell, grid=grid)
    if size == 0:
        return {**profile, "insufficient": True}
    quantiles = quantile_grid(present, size)
    points = np.unique(quantiles)
    cells = cell_counts(present, points)
    edges = psi_edges(quantiles)
    psi_expected = np.bincount(cell_bins(points, edges), weights=cells, minlength=len(edges) + 1) / count
    low, high = np.quantile(present, EXPECTED_RANGE_LEVELS)
    # At least min_cell rows lie beyond each outermost grid point, as for every other published point.
    low, high = max(float(low), float(points[0])), min(float(high), float(points[-1]))
    below, above = present[present < points[0]], present[present > points[-1]]
    return {
        **profile,
        "insufficient": False,
        "grid_size": size,
        "quantiles": quantiles.tolist(),
        "points": points.tolist(),
        "cell_proportions": (cells / count).tolist(),
        # Where the mass beyond the grid lies (for the Wasserstein distance), published only for a crowd.
        "tail_means": [
            float(below.mean()) if len(below) >= min_cell else None,
            float(above.mean()) if len(above) >= min_cell else None,
        ],
        "psi_edges": edges.tolist(),
        "psi_expected": psi_expected.tolist(),
        "expected_range": [float(low), float(high)],
        "outside_range_share": float(((present < low) | (present > high)).mean()),
        "mean": float(present.mean()),
        "std": float(present.std()),
    }


def categorical_profile(series: pd.Series, *, min_cell: int) -> dict[str, Any]:
    codes, names = category_codes(series)
    present = codes[codes >= 0]
    count = len(present)
    profile: dict[str, Any] = {
        "rows": len(series),
        "count": count,
        "missing_share": float((len(series) - count) / len(series)) if len(series) else 0.0,
    }
    if count < 2 * min_cell:
        return {**profile, "insufficient": True}
    counts = np.bincount(present, minlength=len(names))
    frequent = sorted((i for i in range(len(names)) if counts[i] >= min_cell), key=lambda i: (-counts[i], names[i]))
    other = count - int(counts[frequent].sum())
    return {
        **profile,
        "insufficient": False,
        "categories": [names[i] for i in frequent],
        # One share per category, then the (other) bucket last.
        "proportions": [float(counts[i] / count) for i in frequent] + [other / count],
        "other_share": other / count,
    }


def build_reference(
    frame: pd.DataFrame,
    *,
    features: dict[str, str],
    scores: np.ndarray | None = None,
    min_cell: int = 10,
    grid: int = 1000,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """The JSON reference of a model's training rows. ``features`` maps column -> "numeric" | "categorical";
    ``scores`` are the predicted positive-class scores on the same rows, ``threshold`` the decision threshold."""
    if min_cell < 1 or grid < 1:
        raise ValueError("min_cell and grid must be at least 1")
    unknown = {kind for kind in features.values() if kind not in KINDS}
    if unknown:
        raise ValueError(f"Feature kinds must be numeric or categorical, not {', '.join(sorted(unknown))}")
    absent = [column for column in features if column not in frame.columns]
    if absent:
        raise ValueError(f"Column(s) not in the training data: {', '.join(absent)}")
    profiles: dict[str, dict[str, Any]] = {}
    for column, kind in features.items():
        if kind == "numeric":
            values, unparseable = numeric_values(frame[column])
            if unparseable:
                raise ValueError(f"{column}: {unparseable} training value(s) are not numbers")
            profiles[column] = {"kind": kind, **numeric_profile(values, min_cell=min_cell, grid=grid)}
        else:
            profiles[column] = {"kind": kind, **categorical_profile(frame[column], min_cell=min_cell)}
    prediction = None
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        if len(scores) != len(frame):
            raise ValueError("scores must have one value per training row")
        prediction = numeric_profile(scores, min_cell=min_cell, grid=grid)
        present = scores[~np.isnan(scores)]
        prediction["positive_rate"] = float((present >= threshold).mean()) if len(present) else None
    return {
        "version": VERSION,
        "rows": len(frame),
        "min_cell": min_cell,
        "grid": grid,
        "threshold": threshold,
        "schema": {column: {"kind": kind, "dtype": str(frame[column].dtype)} for column, kind in features.items()},
        "features": profiles,
        "prediction": prediction,
    }
