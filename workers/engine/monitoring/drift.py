"""Drift statistics: exact ones on arrays (each equal to scipy on the same inputs), the same over many columns of a
raw window, and their counterparts from a window's sketch.

Exact statistics (missing values are dropped first: they are the data-quality monitor's business):
- ``psi``: population stability index sum((a - e) ln(a / e)) with both shares floored at ``eps`` (the symmetric
  Kullback-Leibler divergence, i.e. scipy ``rel_entr(a, e) + rel_entr(e, a)`` summed).
- ``ks``: ``scipy.stats.ks_2samp`` (two-sided, method "auto"). Above 10,000 rows per side, where scipy switches to
  Smirnov's asymptotic p-value, the statistic comes from one merge of the two sorted samples and the p-value from
  ``kstwo.sf(d, round(n1 n2 / (n1 + n2)))`` as scipy does; at or below it scipy itself runs (exact p-value).
- ``wasserstein``: ``scipy.stats.wasserstein_distance``, the integral of |F_a - F_b|, from the same merge.
- ``chi_square``: ``scipy.stats.chisquare(f_obs, f_exp)`` with the expected counts scaled to the window's total.
  A category with expected share 0 (a value the reference never had) would make the statistic infinite: it is left
  out of the test, and the result says which categories and how many window rows were left out.
- ``jensen_shannon``: ``scipy.spatial.distance.jensenshannon(p, q, base=2)``, a distance in [0, 1].

From a sketch (``drift_from_sketch``), against the stored reference; ``columns`` describes the grid cells, and both
the training and the window distributions are known exactly per cell:
- PSI is exact: its bin edges are grid points, so its bins are unions of cells.
- Chi-square, Jensen-Shannon and PSI of a categorical feature are exact on the reference's categories, with every
  value that is not a named training category (a rare training value or a new one) in the ``(other)`` bucket.
- KS: both cumulative distributions are known exactly at every grid point and just below it, so the largest gap
  there, ``D_grid``, is a lower bound of the exact statistic. Inside an open cell whose left end has gap ``a``, in
  which the reference has share r and the window share w, the gap stays within [a - w, a + r]; so the exact
  statistic D satisfies ``D_grid <= D <= max(D_grid, max over open cells of max(|a + r|, |a - w|))``, which is at
  most ``D_grid + max(r, w)`` over the cells (about 1/g for an undrifted continuous feature; 0 for a discrete feature
  whose values are all grid points). ``ks_statistic`` is ``D_grid`` and ``ks_statistic_bounds`` the two bounds; the
  p-value is the asymptotic one at each bound (``ks_pvalue`` is the one at ``D_grid``, the larger, so a KS warning
  from a sketch is never due to the approximation).
- Wasserstein: inside each open cell between grid points (width h) both distributions are taken as uniform, which is
  off by at most ``h * max(r, w)`` in that cell's integral. Beyond the grid, the integral of each cumulative
  distribution is known exactly from the tail's share and mean (mass * distance of the tail mean to the grid end),
  which bounds the tail's contribution between |A_ref - A_window| (reported) and A_ref + A_window. So
  ``wasserstein_bounds`` = [W - sum of cell errors, W + sum of cell errors + 2 min(A_ref, A_window) per tail]
  contains the exact distance; it is None when the reference's tail beyond the grid is too small to publish its mean.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import rel_entr

from workers.engine.monitoring.columns import category_codes, cell_bins, numeric_values
from workers.engine.monitoring.reference import OTHER, grid_size, psi_edges, quantile_grid
from workers.engine.monitoring.sketch import WindowSketch

# scipy.stats.ks_2samp's switch from the exact to the asymptotic p-value (method "auto").
KS_EXACT_MAX_ROWS = 10_000
DEFAULT_THRESHOLDS = {"psi_warn": 0.1, "psi_alert": 0.25, "ks_pvalue": 0.001}


class ChiSquareResult(NamedTuple):
    statistic: float
    pvalue: float
    dropped: list[int]  # positions of categories with expected share 0, left out of the test
    dropped_rows: float  # window rows in them


def psi(expected_props: Any, actual_props: Any, eps: float = 1e-4) -> float:
    expected = np.maximum(np.asarray(expected_props, dtype=float), eps)
    actual = np.maximum(np.asarray(actual_props, dtype=float), eps)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _present_sorted(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return np.sort(array[~np.isnan(array)])


def _merged_statistics(reference_sorted: np.ndarray, window_sorted: np.ndarray) -> tuple[float, float]:
    """KS statistic (as ks_2samp computes it) and Wasserstein distance (as wasserstein_distance does), from one merge
    of two sorted samples: after a stable sort of the two runs, the count of each sample at or below a value is a
    running sum, which is exactly what scipy's searchsorted(..., side="right") returns at the end of each tie."""
    n1, n2 = len(reference_sorted), len(window_sorted)
    merged = np.concatenate([reference_sorted, window_sorted])
    order = np.argsort(merged, kind="stable")  # two sorted runs: a linear merge
    values = merged[order]
    from_reference = np.cumsum(order < n1)
    from_window = np.arange(1, n1 + n2 + 1) - from_reference
    gaps = from_reference / n1 - from_window / n2
    # Between equal values the width is 0, so only the end of each tie contributes, as in scipy.
    wasserstein_distance = float(np.sum(np.abs(gaps[:-1]) * np.diff(values)))
    tie_end = np.empty(len(values), dtype=bool)
    tie_end[:-1] = values[1:] != values[:-1]
    tie_end[-1] = True
    gaps = gaps[tie_end]
    below = float(np.clip(-gaps.min(), 0, 1))
    above = float(gaps.max())
    return (below if below > above else above), wasserstein_distance


def ks_asymptotic_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Smirnov's asymptotic two-sided p-value, as ks_2samp computes it for large samples."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    effective = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(effective)), 0, 1))


def _ks_sorted(reference_sorted: np.ndarray, window_sorted: np.ndarray) -> tuple[float, float, float]:
    """(KS statistic, KS p-value, Wasserstein distance) of two sorted samples."""
    n1, n2 = len(reference_sorted), len(window_sorted)
    if n1 == 0 or n2 == 0:
        return float("nan"), float("nan"), float("nan")
    statistic, wasserstein_distance = _merged_statistics(reference_sorted, window_sorted)
    if max(n1, n2) <= KS_EXACT_MAX_ROWS:
        # Small samples: scipy's exact p-value (it also rounds the statistic to a multiple of 1 / lcm(n1, n2)).
        result = stats.ks_2samp(reference_sorted, window_sorted)
        return float(result.statistic), float(result.pvalue), wasserstein_distance
    return statistic, ks_asymptotic_pvalue(statistic, n1, n2), wasserstein_distance


def ks(reference_values: Any, window_values: Any) -> tuple[float, float]:
    """(statistic, p-value) of the two-sample Kolmogorov-Smirnov test, as ``scipy.stats.ks_2samp``."""
    statistic, pvalue, _ = _ks_sorted(_present_sorted(reference_values), _present_sorted(window_values))
    return statistic, pvalue


def wasserstein(a: Any, b: Any) -> float:
    """The first Wasserstein distance between two samples, as ``scipy.stats.wasserstein_distance``."""
    a_sorted, b_sorted = _present_sorted(a), _present_sorted(b)
    if len(a_sorted) == 0 or len(b_sorted) == 0:
        return float("nan")
    return _merged_statistics(a_sorted, b_sorted)[1]


def chi_square(reference_props: Any, window_counts: Any) -> ChiSquareResult:
    """Pearson's chi-square of the window's counts against the reference's shares, as ``scipy.stats.chisquare``
    with ``f_exp`` = the shares scaled to the window's total over the categories the reference has."""
    expected_share = np.asarray(reference_props, dtype=float)
    observed = np.asarray(window_counts, dtype=float)
    kept = expected_share > 0
    dropped = np.flatnonzero(~kept).tolist()
    dropped_rows = float(observed[~kept].sum())
    observed, expected_share = observed[kept], expected_share[kept]
    total = observed.sum()
    if len(observed) < 2 or total <= 0:
        return ChiSquareResult(float("nan"), float("nan"), dropped, dropped_rows)
    expected = expected_share / expected_share.sum() * total
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return ChiSquareResult(statistic, float(stats.chi2.sf(statistic, len(observed) - 1)), dropped, dropped_rows)


def jensen_shannon(p: Any, q: Any) -> float:
    """The Jensen-Shannon distance with base 2, as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    p = p / p.sum()
    q = q / q.sum()
    middle = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, middle)) + np.sum(rel_entr(q, middle))) / np.log(2)
    return float(np.sqrt(divergence / 2.0))


def _bin_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of sorted values in the PSI bins [edges[j-1], edges[j])."""
    below_edge = np.searchsorted(ordered, edges, side="left")
    return np.diff(np.concatenate([[0], below_edge, [len(ordered)]]))


def _numeric_exact(reference_sorted: np.ndarray, edges: np.ndarray, expected: np.ndarray, window: pd.Series) -> dict:
    values, unparseable = numeric_values(window)
    window_sorted = np.sort(values[~np.isnan(values)])
    rows = len(window_sorted)
    statistic, pvalue, distance = _ks_sorted(reference_sorted, window_sorted)
    return {
        "kind": "numeric",
        "rows": rows,
        "missing": len(values) - rows,
        "psi": psi(expected, _bin_counts(window_sorted, edges) / rows) if rows else float("nan"),
        "ks_statistic": statistic,
        "ks_pvalue": pvalue,
        "wasserstein": distance,
    }


def _categorical_exact(names: list[str], expected: np.ndarray, other: int | None, window: pd.Series) -> dict:
    """``names`` are the reference's categories, ``expected`` their shares; a window value outside them is counted
    in the ``(other)`` position ``other`` when the reference has one, else added as a category with share 0."""
    codes, window_names = category_codes(window)
    index = {name: position for position, name in enumerate(names)}
    categories = list(names)
    mapping = np.empty(len(window_names), dtype=np.int64)
    for position, name in enumerate(window_names):
        if name in index:
            mapping[position] = index[name]
        elif other is not None:
            mapping[position] = other
        else:
            mapping[position] = len(categories)
            index[name] = len(categories)
            categories.append(name)
    present = codes[codes >= 0]
    counts = np.bincount(mapping[present], minlength=len(categories)).astype(float)
    expected = np.concatenate([expected, np.zeros(len(categories) - len(expected))])
    rows = int(counts.sum())
    test = chi_square(expected, counts)
    return {
        "kind": "categorical",
        "rows": rows,
        "missing": len(codes) - rows,
        "categories": categories,
        "psi": psi(expected, counts / rows) if rows else float("nan"),
        "chi_square": test.statistic,
        "chi_square_pvalue": test.pvalue,
        "chi_square_dropped": [categories[i] for i in test.dropped],
        "chi_square_dropped_rows": test.dropped_rows,
        "jensen_shannon": jensen_shannon(expected, counts) if rows else float("nan"),
    }


def drift_exact(
    reference: pd.DataFrame | dict[str, Any],
    window: pd.DataFrame,
    features: dict[str, str],
    *,
    min_cell: int = 10,
    grid: int = 1000,
) -> dict[str, dict[str, Any]]:
    """Every drift statistic of every feature of a raw window, exactly, one vectorised pass per column.

    ``reference`` is either the training rows (then every statistic equals scipy's on the training and window
    values; PSI bins come from the training quantile grid exactly as ``build_reference(min_cell, grid)`` sets them,
    and categories are all training values) or a stored reference from ``build_reference`` (then the training sample
    is represented by its quantile grid, so KS and Wasserstein equal scipy's on the grid points and the window -
    the KS p-value then treats the grid as a sample of g values, which understates significance - and categories
    are the reference's, with every other value in ``(other)``).
    Numeric result: kind, rows, missing, psi, ks_statistic, ks_pvalue, wasserstein. Categorical: kind, rows,
    missing, categories, psi, chi_square, chi_square_pvalue, chi_square_dropped (categories with expected share 0,
    left out of the test), chi_square_dropped_rows, jensen_shannon."""
    stored = isinstance(reference, dict)
    out: dict[str, dict[str, Any]] = {}
    for name, kind in features.items():
        if kind == "numeric":
            if stored:
                profile = reference["features"][name]
                reference_sorted = np.asarray(profile.get("quantiles", []), dtype=float)
                edges = np.asarray(profile.get("psi_edges", []), dtype=float)
                expected = np.asarray(profile.get("psi_expected", [1.0]), dtype=float)
            else:
                reference_sorted = _present_sorted(numeric_values(reference[name])[0])
                size = grid_size(len(reference_sorted), min_cell=min_cell, grid=grid)
                edges = psi_edges(quantile_grid(reference_sorted, size)) if size else np.array([], dtype=float)
                expected = _bin_counts(reference_sorted, edges) / max(len(reference_sorted), 1)
            out[name] = _numeric_exact(reference_sorted, edges, expected, window[name])
        else:
            if stored:
                profile = reference["features"][name]
                names = [*profile.get("categories", []), OTHER]
                expected = np.asarray(profile.get("proportions", [0.0]), dtype=float)
                out[name] = _categorical_exact(names, expected, len(names) - 1, window[name])
            else:
                codes, names = category_codes(reference[name])
                counts = np.bincount(codes[codes >= 0], minlength=len(names)).astype(float)
                out[name] = _categorical_exact(names, counts / max(counts.sum(), 1), None, window[name])
    return out


def _status(psi_value: float, pvalue: float | None, thresholds: dict[str, float]) -> str:
    if psi_value >= thresholds["psi_alert"]:
        return "fail"
    if psi_value >= thresholds["psi_warn"] or (pvalue is not None and pvalue < thresholds["ks_pvalue"]):
        return "warn"
    return "pass"


def _tail_area(share: float, mean: float | None, end: float, below: bool) -> float | None:
    """Integral of the cumulative distribution (below the grid) or of its complement (above): share times the
    distance from the tail's mean to the grid's end; None when the share is positive but the mean is unknown."""
    if share <= 0:
        return 0.0
    if mean is None:
        return None
    return share * (end - mean if below else mean - end)


def _numeric_from_cells(
    profile: dict[str, Any],
    window_cells: np.ndarray,
    window_tail_sums: tuple[float, float],
) -> dict[str, Any]:
    """PSI, KS (with bounds) and Wasserstein (with bounds) of a window's grid counts against the reference."""
    points = np.asarray(profile["points"], dtype=float)
    reference_share = np.asarray(profile["cell_proportions"], dtype=float)
    rows = int(window_cells.sum())
    window_share = window_cells / rows
    bins = cell_bins(points, np.asarray(profile["psi_edges"], dtype=float))
    actual = np.bincount(bins, weights=window_share, minlength=len(profile["psi_expected"]))
    psi_value = psi(profile["psi_expected"], actual)

    gap_after = np.cumsum(reference_share) - np.cumsum(window_share)
    gap_before = np.concatenate([[0.0], gap_after[:-1]])
    statistic_low = float(np.clip(np.abs(gap_after).max(), 0, 1))
    open_cells = slice(0, None, 2)
    reach = np.maximum(
        np.abs(gap_before[open_cells] + reference_share[open_cells]),
        np.abs(gap_before[open_cells] - window_share[open_cells]),
    )
    statistic_high = float(np.clip(max(statistic_low, reach.max()), 0, 1))
    n1 = int(profile["count"])

    # Interior open cells 2, 4, ..., 2U - 2 lie between neighbouring grid points.
    widths = np.diff(points)
    start, end = gap_before[2:-1:2], gap_after[2:-1:2]
    magnitude = np.abs(start) + np.abs(end)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(magnitude > 0, (start**2 + end**2) / (2 * magnitude), 0.0)
    interior = float(np.sum(widths * np.where(start * end >= 0, magnitude / 2, crossing)))
    interior_error = float(np.sum(widths * np.maximum(reference_share[2:-1:2], window_share[2:-1:2])))
    tails_value, tails_slack, bounded = 0.0, 0.0, True
    for side, below in ((0, True), (1, False)):
        cell = 0 if below else -1
        end_point = points[0] if below else points[-1]
        window_count = window_cells[cell]
        window_mean = window_tail_sums[side] / window_count if window_count else None
        reference_area = _tail_area(reference_share[cell], profile["tail_means"][side], end_point, below)
        window_area = _tail_area(window_share[cell], window_mean, end_point, below)
        assert window_area is not None
        if reference_area is None:
            bounded = False
            tails_value += window_area
            continue
        tails_value += abs(reference_area - window_area)
        tails_slack += 2 * min(reference_area, window_area)
    distance = interior + tails_value
    bounds = [max(0.0, interior - interior_error) + tails_value, distance + interior_error + tails_slack]
    std = profile.get("std") or 0.0
    return {
        "rows": rows,
        "psi": psi_value,
        "ks_statistic": statistic_low,
        "ks_statistic_bounds": [statistic_low, statistic_high],
        "ks_pvalue": ks_asymptotic_pvalue(statistic_low, n1, rows),
        "ks_pvalue_bounds": [
            ks_asymptotic_pvalue(statistic_high, n1, rows),
            ks_asymptotic_pvalue(statistic_low, n1, rows),
        ],
        "wasserstein": distance,
        "wasserstein_bounds": bounds if bounded else None,
        "wasserstein_normalised": distance / std if std > 0 else None,
    }


def drift_from_sketch(
    reference: dict[str, Any], sketch: WindowSketch, thresholds: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """One entry per reference feature, in reference order: ``feature``, ``kind``, ``rows`` (window rows with a
    value), ``missing``, ``insufficient`` (no window values, or a reference too small to compare with: then only
    these keys), ``status`` ("pass" | "warn" | "fail": PSI against psi_warn / psi_alert, the KS or chi-square
    p-value against ks_pvalue), and the statistics: numeric ``psi``, ``ks_statistic``, ``ks_statistic_bounds``,
    ``ks_pvalue``, ``ks_pvalue_bounds``, ``wasserstein``, ``wasserstein_bounds`` (None when unbounded),
    ``wasserstein_normalised`` (by the training standard deviation); categorical ``categories`` (the reference's,
    then ``(other)``), ``psi``, ``chi_square``, ``chi_square_pvalue``, ``chi_square_dropped``,
    ``chi_square_dropped_rows``, ``jensen_shannon``, ``new_categories`` (unseen names stored in the sketch)."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    results: list[dict[str, Any]] = []
    for name, profile in reference["features"].items():
        if profile["kind"] == "numeric":
            state = sketch.numeric[name]
            entry: dict[str, Any] = {"feature": name, "kind": "numeric", "rows": state.count, "missing": state.missing}
            if profile.get("insufficient") or state.count == 0:
                results.append({**entry, "insufficient": True})
                continue
            entry.update(_numeric_from_cells(profile, state.cells, (state.below_grid_sum, state.above_grid_sum)))
            entry["insufficient"] = False
            entry["status"] = _status(entry["psi"], entry["ks_pvalue"], limits)
        else:
            categorical = sketch.categorical[name]
            rows = categorical.count
            entry = {"feature": name, "kind": "categorical", "rows": rows, "missing": categorical.missing}
            if profile.get("insufficient") or rows == 0:
                results.append({**entry, "insufficient": True})
                continue
            categories = [*profile["categories"], OTHER]
            expected = np.asarray(profile["proportions"], dtype=float)
            counts = np.concatenate([categorical.counts, [categorical.outside_categories]]).astype(float)
            test = chi_square(expected, counts)
            entry.update(
                {
                    "insufficient": False,
                    "categories": categories,
                    "psi": psi(expected, counts / rows),
                    "chi_square": test.statistic,
                    "chi_square_pvalue": test.pvalue,
                    "chi_square_dropped": [categories[i] for i in test.dropped],
                    "chi_square_dropped_rows": test.dropped_rows,
                    "jensen_shannon": jensen_shannon(expected, counts),
                    "new_categories": dict(categorical.unseen.most_common()),
                }
            )
            pvalue = None if np.isnan(test.pvalue) else test.pvalue
            entry["status"] = _status(entry["psi"], pvalue, limits)
        results.append(entry)
    return results


def prediction_drift_from_sketch(reference: dict[str, Any], sketch: WindowSketch) -> dict[str, Any] | None:
    """PSI of the window's prediction scores on the reference's score grid; failing scores, of the predicted
    positive share against the training one (two bins). None when neither can be compared."""
    profile = reference.get("prediction")
    if not profile:
        return None
    state = sketch.prediction
    if not profile.get("insufficient") and state is not None and state.count > 0:
        entry = _numeric_from_cells(profile, state.cells, (state.below_grid_sum, state.above_grid_sum))
        return {"basis": "scores", **entry}
    rate = profile.get("positive_rate")
    if rate is not None and sketch.predicted_rows > 0:
        window_rate = sketch.predicted_positive / sketch.predicted_rows
        return {
            "basis": "positive_rate",
            "rows": sketch.predicted_rows,
            "psi": psi([1 - rate, rate], [1 - window_rate, window_rate]),
            "positive_rate": window_rate,
            "expected_positive_rate": rate,
        }
    return None
