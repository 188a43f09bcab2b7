"""Every exact drift statistic equals scipy's on the same inputs (random, with ties and missing values)."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from tests.workers.engine.monitoring.conftest import FEATURES, make_rows
from workers.engine.monitoring.drift import chi_square, drift_exact, jensen_shannon, ks, psi, wasserstein

TOL = 1e-9


def sample(rng, n, *, shift=0.0, decimals=1, missing=0.05):
    """Rounded normals (so there are many ties) with missing values."""
    values = np.round(rng.normal(shift, 1.0, n), decimals)
    values[rng.random(n) < missing] = np.nan
    return values


def present(values):
    return values[~np.isnan(values)]


# Sizes on both sides of ks_2samp's switch from the exact to the asymptotic p-value (10,000 rows).
@pytest.mark.parametrize(("n1", "n2", "shift"), [(40, 55, 0.3), (3000, 9000, 0.05), (12_000, 30_000, 0.02)])
@pytest.mark.parametrize("decimals", [0, 2, 6])
def test_ks_equals_scipy_ks_2samp(n1, n2, shift, decimals):
    rng = np.random.default_rng(n1 + decimals)
    a, b = sample(rng, n1, decimals=decimals), sample(rng, n2, shift=shift, decimals=decimals)
    expected = stats.ks_2samp(present(a), present(b))
    statistic, pvalue = ks(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=TOL)
    assert pvalue == pytest.approx(expected.pvalue, abs=TOL, rel=TOL)


def test_ks_finds_the_gap_whichever_sample_is_above():
    # The statistic of a window shifted one way is found whichever CDF is above (scipy's min / max branches).
    rng = np.random.default_rng(3)
    a, b = sample(rng, 20_000), sample(rng, 15_000, shift=-0.2)
    for left, right in ((a, b), (b, a)):
        assert ks(left, right)[0] == pytest.approx(stats.ks_2samp(present(left), present(right)).statistic, abs=TOL)


@pytest.mark.parametrize(("n1", "n2"), [(30, 80), (5000, 50_000)])
@pytest.mark.parametrize("decimals", [0, 3])
def test_wasserstein_equals_scipy(n1, n2, decimals):
    rng = np.random.default_rng(n2 + decimals)
    a, b = sample(rng, n1, decimals=decimals), sample(rng, n2, shift=0.4, decimals=decimals) * 3
    expected = stats.wasserstein_distance(present(a), present(b))
    assert wasserstein(a, b) == pytest.approx(expected, abs=TOL, rel=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psi_is_the_symmetric_relative_entropy_of_floored_shares(seed):
    rng = np.random.default_rng(seed)
    expected, actual = rng.dirichlet(np.ones(10)), rng.dirichlet(np.ones(10))
    expected[3] = 0.0  # an empty bin is floored at eps, not divided by
    floored_e, floored_a = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
    reference = np.sum(rel_entr(floored_a, floored_e) + rel_entr(floored_e, floored_a))
    assert psi(expected, actual) == pytest.approx(reference, abs=TOL)
    assert psi(actual, actual) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chi_square_equals_scipy_chisquare_scaled_to_the_window(seed):
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(6))
    counts = rng.multinomial(5000, rng.dirichlet(np.ones(6)))
    result = chi_square(shares, counts)
    expected = stats.chisquare(counts, shares * counts.sum())
    assert result.statistic == pytest.approx(expected.statistic, abs=TOL, rel=TOL)
    assert result.pvalue == pytest.approx(expected.pvalue, abs=TOL)
    assert result.dropped == [] and result.dropped_rows == 0


def test_chi_square_leaves_out_categories_the_reference_never_had_and_says_so():
    shares = np.array([0.5, 0.3, 0.0, 0.2])
    counts = np.array([480, 330, 25, 190])
    result = chi_square(shares, counts)
    kept = np.array([0, 1, 3])
    expected = stats.chisquare(counts[kept], shares[kept] / shares[kept].sum() * counts[kept].sum())
    assert result.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert result.pvalue == pytest.approx(expected.pvalue, abs=TOL)
    assert result.dropped == [2] and result.dropped_rows == 25
    # scipy itself, given the zero, answers with an infinite statistic: the reason for leaving it out.
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isinf(stats.chisquare(counts, shares * counts.sum()).statistic)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jensen_shannon_equals_scipy_base_2(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.integers(0, 50, 8).astype(float), rng.integers(0, 50, 8).astype(float)
    p[0], q[1] = 0, 0  # zero shares on either side
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=TOL)


def test_drift_exact_on_raw_rows_equals_scipy_column_by_column(training):
    window = make_rows(2, 15_000, shift=0.2, new_region=0.03)
    result = drift_exact(training, window, FEATURES)
    for name in ("income", "age", "hours"):
        ref, win = present(training[name].to_numpy()), present(window[name].to_numpy())
        expected = stats.ks_2samp(ref, win)
        assert result[name]["ks_statistic"] == pytest.approx(expected.statistic, abs=TOL)
        assert result[name]["ks_pvalue"] == pytest.approx(expected.pvalue, abs=TOL)
        assert result[name]["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, win), rel=TOL)
        assert result[name]["rows"] == len(win)
    region = result["region"]
    ref_counts = training["region"].value_counts()
    win_counts = window["region"].value_counts()
    categories = region["categories"]
    assert set(categories) == set(ref_counts.index) | set(win_counts.index)
    shares = ref_counts.reindex(categories, fill_value=0).to_numpy() / ref_counts.sum()
    counts = win_counts.reindex(categories, fill_value=0).to_numpy()
    assert sorted(region["chi_square_dropped"]) == ["abroad", "island"]
    kept = shares > 0
    expected = stats.chisquare(counts[kept], shares[kept] * counts[kept].sum() / shares[kept].sum())
    assert region["chi_square"] == pytest.approx(expected.statistic, rel=TOL)
    assert region["chi_square_pvalue"] == pytest.approx(expected.pvalue, abs=TOL)
    assert region["jensen_shannon"] == pytest.approx(jensenshannon(shares, counts, base=2), abs=TOL)
    assert region["psi"] > result["workclass"]["psi"]  # the column with new values drifted, the other did not


def test_drift_exact_flags_the_shifted_column_only(training):
    window = make_rows(5, 20_000, shift=0.3)
    result = drift_exact(training, window, FEATURES)
    assert result["income"]["psi"] > 0.25
    assert result["age"]["psi"] < 0.01 and result["hours"]["psi"] < 0.01
