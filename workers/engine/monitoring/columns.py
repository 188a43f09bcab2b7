"""How a column of a batch becomes what the monitors count, the same way for the training reference and every window:
numbers (values that are not numbers told apart from missing ones), category names (normalised as text), and counts
on a reference's quantile grid.

Grid cells: for the sorted distinct grid points u_0 < ... < u_{U-1} there are 2U + 1 cells, in order:
cell 2k is the open interval (u_{k-1}, u_k) (with u_{-1} = -inf), cell 2k + 1 is the point u_k itself, and cell 2U is
(u_{U-1}, +inf). Keeping the points as their own cells makes the cumulative distribution known exactly at every grid
point, so a discrete feature (ages, counts) loses nothing to the grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MISSING_GROUP = "(missing)"


def numeric_values(series: pd.Series) -> tuple[np.ndarray, int]:
    """Float values with NaN for missing, and how many present values were not (finite) numbers."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(values)
    else:
        blank = series.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
        present = ~series.isna().to_numpy(dtype=bool) & ~blank
        values = pd.to_numeric(series.where(~blank), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        # An infinity is not a measurement: count it as a value of the wrong type, and as missing.
        values = np.where(infinite, np.nan, values)
    unparseable = int((present & np.isnan(values)).sum())
    return values, unparseable


def category_text(value: Any) -> str | None:
    """A category's name: text, stripped; 1.0 written 1 so a float column and an int column agree; None if missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if np.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def category_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Per row an index into the returned names, -1 for missing. Hashing is done once per distinct value, so a
    million rows cost one factorisation."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy(dtype=np.int64)
        uniques: Any = series.cat.categories
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        codes = codes.astype(np.int64, copy=False)
    index: dict[str, int] = {}
    # Two raw values can share a name (1 and 1.0; "a" and "a "); the last slot maps code -1 (missing) to -1.
    remap = np.full(len(uniques) + 1, -1, dtype=np.int64)
    for position, value in enumerate(uniques):
        name = category_text(value)
        if name is not None:
            remap[position] = index.setdefault(name, len(index))
    return remap[codes], list(index)


def cell_counts(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Counts of the (non-missing) ``values`` in the 2U + 1 grid cells of the distinct sorted ``points``.
    Sorting the values and searching the few points in them is faster than searching every value in the points."""
    ordered = np.sort(values)
    if len(points) == 0:
        return np.array([len(ordered)], dtype=np.int64)
    left = np.searchsorted(ordered, points, side="left")
    right = np.searchsorted(ordered, points, side="right")
    counts = np.empty(2 * len(points) + 1, dtype=np.int64)
    counts[1::2] = right - left
    counts[0] = left[0]
    counts[2:-1:2] = left[1:] - right[:-1]
    counts[-1] = len(ordered) - right[-1]
    return counts


def cell_bins(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """For each grid cell, the PSI bin holding it, where bin j is [edges[j-1], edges[j]) (open-ended at both ends),
    i.e. ``searchsorted(edges, value, side="right")``. Exact because every edge is a grid point."""
    bins = np.empty(2 * len(points) + 1, dtype=np.int64)
    bins[0] = 0
    if len(points):
        at_point = np.searchsorted(edges, points, side="right")
        bins[1::2] = at_point
        bins[2::2] = at_point  # the open cell above a point has no edge inside it
    return bins
