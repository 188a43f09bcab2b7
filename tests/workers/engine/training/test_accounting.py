import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import pld_privacy_accountant, privacy_loss_distribution

from workers.engine.training.accounting import (
    Mechanism,
    check_delta,
    default_delta,
    epsilon_spent,
    epsilon_tier,
    noise_for_target,
)


def pld_epsilon(sigma, q, steps, delta):
    """Google's PLD accountant: an independent implementation."""
    accountant = pld_privacy_accountant.PLDAccountant()
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
        )
    )
    return accountant.get_epsilon(delta)


def pessimistic_pld_epsilon(sigma, q, steps, delta, interval):
    return (
        privacy_loss_distribution.from_gaussian_mechanism(
            sigma,
            sampling_prob=q,
            use_connect_dots=True,
            pessimistic_estimate=True,
            value_discretization_interval=interval,
        )
        .self_compose(steps)
        .get_epsilon_for_delta(delta)
    )


def fine_reference(sigma, q, steps, delta):
    """dp_accounting's pessimistic PLD on a grid refined by 3 (from 1e-3) until it moves by under a tenth of the
    allowed error; returns the value and its discretisation tolerance (the last move: the estimates decrease to the
    exact value, about quadratically in the interval)."""
    interval = 1e-3
    previous = pessimistic_pld_epsilon(sigma, q, steps, delta, interval)
    while True:
        interval /= 3
        current = pessimistic_pld_epsilon(sigma, q, steps, delta, interval)
        if abs(previous - current) <= 0.1 * max(0.002, 0.01 * current) or interval < 1e-7:
            return current, abs(previous - current)
        previous = current


@pytest.mark.parametrize(("sigma", "q", "steps"), [(1.0, 0.01, 1000), (0.8, 0.02, 500), (1.5, 0.005, 3000)])
def test_reported_epsilon_agrees_with_googles_pld_accountant(sigma, q, steps):
    ours = epsilon_spent([Mechanism(sigma, q, steps)], 1e-5)
    assert ours.accountant == "pld" and ours.label.startswith("PLD")
    assert ours.epsilon == pytest.approx(pld_epsilon(sigma, q, steps, 1e-5), abs=0.005)


@pytest.mark.slow
def test_epsilon_is_sound_and_tight_over_random_configurations():
    """100 configurations over the whole configurable range: never below an independent, finer PLD value minus its
    discretisation tolerance, and within 1% relative or 0.002 absolute of it."""
    rng = np.random.default_rng(20240612)
    misses = []
    for _ in range(100):
        sigma = rng.uniform(0.5, 5)
        q = math.exp(rng.uniform(math.log(1e-4), math.log(0.1)))
        steps = int(round(math.exp(rng.uniform(math.log(10), math.log(20_000)))))
        delta = math.exp(rng.uniform(math.log(1e-8), math.log(1e-4)))
        ours = epsilon_spent([Mechanism(sigma, q, steps)], delta).epsilon
        reference, tolerance = fine_reference(sigma, q, steps, delta)
        if ours < reference - tolerance or abs(ours - reference) > max(0.01 * reference, 0.002):
            misses.append((sigma, q, steps, delta, ours, reference, tolerance))
    assert misses == []


@pytest.mark.parametrize(("sigma", "q", "steps", "delta"), [(1.0, 0.01, 1000, 1e-5), (2.0, 0.001, 5000, 1e-6)])
def test_reported_epsilon_lies_within_the_prv_packages_bounds(sigma, q, steps, delta):
    """An independent implementation (Gopi et al.'s prv-accountant) brackets the exact value; ours is inside."""
    from prv_accountant import PoissonSubsampledGaussianMechanism, PRVAccountant

    accountant = PRVAccountant(
        prvs=[PoissonSubsampledGaussianMechanism(noise_multiplier=sigma, sampling_probability=q)],
        max_self_compositions=[steps],
        eps_error=0.002,
        delta_error=delta * 1e-3,
    )
    low, _estimate, high = accountant.compute_epsilon(delta=delta, num_self_compositions=[steps])
    assert low <= epsilon_spent([Mechanism(sigma, q, steps)], delta).epsilon <= high


def test_no_jump_where_the_old_accountant_switched_to_rdp():
    """sigma 1, q 0.05, delta 1e-5 crosses epsilon 10 near 845 steps: each further 10 steps adds about the same."""
    epsilons = [epsilon_spent([Mechanism(1.0, 0.05, steps)], 1e-5).epsilon for steps in range(800, 900, 10)]
    increments = np.diff(epsilons)
    assert epsilons[4] < 10 < epsilons[5]  # 840 and 850 steps sit either side of the old switch
    assert all(increments > 0) and increments.max() < 1.5 * increments.min()
    assert epsilon_spent([Mechanism(1.0, 0.05, 850)], 1e-5).label.startswith("PLD")


def test_large_epsilons_are_still_pld_and_tight():
    report = epsilon_spent([Mechanism(0.5, 0.1, 2000)], 1e-5)
    reference, tolerance = fine_reference(0.5, 0.1, 2000, 1e-5)
    assert report.accountant == "pld" and report.epsilon > 10
    assert reference - tolerance <= report.epsilon <= reference * 1.01


def test_composition_is_tighter_than_the_naive_sum_but_more_than_either_run():
    a, b = Mechanism(1.0, 0.01, 800), Mechanism(1.2, 0.02, 400)
    alone_a, alone_b = (epsilon_spent([m], 1e-5).epsilon for m in (a, b))
    together = epsilon_spent([a, b], 1e-5).epsilon
    assert max(alone_a, alone_b) < together < alone_a + alone_b


def test_the_ledger_composition_matches_an_independent_pld_composition():
    runs = [Mechanism(1.0, 0.01, 800), Mechanism(1.2, 0.02, 400), Mechanism(2.0, 0.01, 2000)]
    interval = 1e-4
    composed = None
    for m in runs:
        pld = privacy_loss_distribution.from_gaussian_mechanism(
            m.noise_multiplier, sampling_prob=m.sample_rate, value_discretization_interval=interval
        ).self_compose(m.steps)
        composed = pld if composed is None else composed.compose(pld)
    reference = composed.get_epsilon_for_delta(1e-5)
    ours = epsilon_spent(runs, 1e-5)
    assert ours.accountant == "pld"
    assert reference - 0.001 <= ours.epsilon <= reference + max(0.01 * reference, 0.002)


def test_noise_for_a_target_is_calibrated_with_the_reporting_accountant():
    sigma, accountant = noise_for_target(target_epsilon=2.0, delta=1e-5, sample_rate=0.01, steps=1000)
    assert accountant == "pld"
    reported = epsilon_spent([Mechanism(sigma, 0.01, 1000)], 1e-5).epsilon
    assert 2.0 - 0.01 <= reported <= 2.0
    assert epsilon_spent([Mechanism(sigma * 0.99, 0.01, 1000)], 1e-5).epsilon > 2.0  # no needless noise
    assert pld_epsilon(sigma, 0.01, 1000, 1e-5) <= 2.0 + 0.002


def test_noise_calibration_for_a_small_sampling_rate_meets_the_target():
    sigma, _ = noise_for_target(target_epsilon=0.5, delta=1e-6, sample_rate=0.002, steps=3000)
    reference, tolerance = fine_reference(sigma, 0.002, 3000, 1e-6)
    assert reference - tolerance <= 0.5
    assert epsilon_spent([Mechanism(sigma, 0.002, 3000)], 1e-6).epsilon <= 0.5


@pytest.mark.parametrize(("n", "delta"), [(32561, 1e-6), (1000, 1e-4), (99, 1e-3), (100, 1e-3), (101, 1e-4)])
def test_default_delta_is_the_largest_power_of_ten_below_one_over_ten_n(n, delta):
    assert default_delta(n) == pytest.approx(delta)
    assert default_delta(n) <= 1 / (10 * n)


def test_delta_at_or_above_one_over_n_is_refused():
    with pytest.raises(ValueError):
        check_delta(1e-3, 1000)
    check_delta(1e-4, 1000)


def test_tiers():
    assert [epsilon_tier(e) for e in (0.5, 3, 12)] == ["strong", "reasonable", "weak"]
