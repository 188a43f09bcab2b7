import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant

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


@pytest.mark.parametrize(("sigma", "q", "steps"), [(1.0, 0.01, 1000), (0.8, 0.02, 500), (1.5, 0.005, 3000)])
def test_reported_epsilon_agrees_with_googles_pld_accountant(sigma, q, steps):
    ours = epsilon_spent([Mechanism(sigma, q, steps)], 1e-5)
    assert ours.accountant == "prv"
    assert ours.epsilon == pytest.approx(pld_epsilon(sigma, q, steps, 1e-5), abs=0.05)


def test_reported_epsilon_agrees_with_the_prv_accountant_package():
    from prv_accountant import PoissonSubsampledGaussianMechanism, PRVAccountant

    mechanism = PoissonSubsampledGaussianMechanism(noise_multiplier=1.0, sampling_probability=0.01)
    accountant = PRVAccountant(prvs=[mechanism], max_self_compositions=[1000], eps_error=0.01, delta_error=1e-9)
    _low, estimate, _high = accountant.compute_epsilon(delta=1e-5, num_self_compositions=[1000])
    assert epsilon_spent([Mechanism(1.0, 0.01, 1000)], 1e-5).epsilon == pytest.approx(estimate, abs=0.05)


def test_composition_is_tighter_than_the_naive_sum_but_more_than_either_run():
    a, b = Mechanism(1.0, 0.01, 800), Mechanism(1.2, 0.02, 400)
    alone_a, alone_b = (epsilon_spent([m], 1e-5).epsilon for m in (a, b))
    together = epsilon_spent([a, b], 1e-5).epsilon
    assert max(alone_a, alone_b) < together < alone_a + alone_b


def test_large_epsilons_fall_back_to_an_rdp_upper_bound_labelled_as_such():
    report = epsilon_spent([Mechanism(0.3, 0.1, 2000)], 1e-5)
    assert report.accountant == "rdp" and report.label == "RDP upper bound" and report.epsilon > 10


def test_noise_for_a_target_meets_it():
    sigma, accountant = noise_for_target(target_epsilon=2.0, delta=1e-5, sample_rate=0.01, steps=1000)
    assert accountant == "prv"
    assert epsilon_spent([Mechanism(sigma, 0.01, 1000)], 1e-5).epsilon == pytest.approx(2.0, abs=0.02)
    assert pld_epsilon(sigma, 0.01, 1000, 1e-5) <= 2.05


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
