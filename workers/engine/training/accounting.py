"""Privacy accounting for DP-SGD with Poisson sampling: one privacy-loss-distribution (PLD) accountant.

Every figure (a run's epsilon, the live curve, noise calibration for a target, the budget ledger's composition) comes
from Google's ``dp_accounting`` PLD of the Poisson-subsampled Gaussian, built with connect-the-dots and a
*pessimistic* discretisation: the discretised distribution dominates the true one, so the epsilon read from it is an
upper bound (sound), and at the interval used here it sits within a few thousandths of the exact value. There is no
switch to another accountant at any size, hence no jump: Opacus's PRV estimate (about +0.01 absolute) and the RDP bound
(up to 16% loose) are gone. GDP is never used: it can underestimate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

from dp_accounting.pld import privacy_loss_distribution as pld

from workers.engine.training.delta import default_delta  # noqa: F401 - re-exported

ACCOUNTANT = "pld"
LABEL = "PLD accountant (dp_accounting, pessimistic)"
# The privacy loss is discretised on a grid of this interval, refined until two grids agree (see _epsilon).
COARSEST_INTERVAL = 1e-2
FINEST_INTERVAL = 1e-6
REFINE = 4
EPSILON_TOLERANCE = 0.005  # calibration stops this far below the target (never above it)


@dataclass(frozen=True)
class Mechanism:
    """One DP-SGD run: Gaussian noise multiplier, Poisson sampling rate, steps."""

    noise_multiplier: float
    sample_rate: float
    steps: int


@dataclass(frozen=True)
class EpsilonReport:
    epsilon: float
    delta: float
    accountant: str  # "pld"
    label: str  # what to print beside the number

    def to_dict(self) -> dict:
        return asdict(self)


def check_delta(delta: float, n: int) -> None:
    if not 0 < delta < 1.0 / n:
        raise ValueError(f"delta {delta:g} must be below 1/n = {1.0 / n:.3g} (n = {n:,} people)")


@functools.lru_cache(maxsize=64)
def _step_pld(noise_multiplier: float, sample_rate: float, interval: float) -> pld.PrivacyLossDistribution:
    """One step: the Gaussian mechanism (sensitivity 1) on a Poisson subsample, add-or-remove neighbours."""
    return pld.from_gaussian_mechanism(
        standard_deviation=noise_multiplier,
        sensitivity=1.0,
        sampling_prob=sample_rate,
        use_connect_dots=True,
        pessimistic_estimate=True,
        value_discretization_interval=interval,
    )


@functools.lru_cache(maxsize=32)
def _run_pld(noise_multiplier: float, sample_rate: float, steps: int, interval: float) -> pld.PrivacyLossDistribution:
    # Cached: the live curve, the final figure and the ledger ask for the same (sigma, q, steps) several times.
    return _step_pld(noise_multiplier, sample_rate, interval).self_compose(steps)


def _validate(mechanism: Mechanism) -> None:
    if not (mechanism.noise_multiplier > 0 and math.isfinite(mechanism.noise_multiplier)):
        raise ValueError(f"noise multiplier {mechanism.noise_multiplier!r} must be a positive number")
    if not 0 < mechanism.sample_rate <= 1:
        raise ValueError(f"sample rate {mechanism.sample_rate!r} must be in (0, 1]")


def _step_scale(mechanism: Mechanism) -> float:
    """Spread of one step's privacy loss (about q * sqrt(exp(1 / sigma^2) - 1) for the subsampled Gaussian)."""
    return mechanism.sample_rate * math.sqrt(math.expm1(min(1.0 / mechanism.noise_multiplier**2, 700.0)))


def _epsilon_at(mechanisms: tuple[Mechanism, ...], delta: float, interval: float) -> float:
    composed: pld.PrivacyLossDistribution | None = None
    for m in mechanisms:
        run = _run_pld(float(m.noise_multiplier), float(m.sample_rate), int(m.steps), interval)
        composed = run if composed is None else composed.compose(run)
    assert composed is not None
    return float(composed.get_epsilon_for_delta(delta))


@functools.lru_cache(maxsize=512)
def _epsilon_settled(mechanisms: tuple[Mechanism, ...], delta: float) -> tuple[float, float]:
    """The pessimistic PLD epsilon on a grid fine enough to be within a few thousandths of the exact value.

    The discretisation error shrinks about quadratically with the interval, and it matters only relative to the
    spread of one step's loss (tiny for small q and large sigma, where thousands of steps add the rounding up). So
    start at a grid a few times that spread, refine by 4 and stop when the finer epsilon moved by less than 15x the
    tolerance (its own error is then about a fifteenth of the move). Every value on the way is an upper bound; the
    finest one is returned, with the interval it settled on. Large-epsilon runs stop on coarse grids (cheap), small
    ones refine (cheap: their support is narrow).
    """
    active = tuple(m for m in mechanisms if m.steps > 0)
    if not active:
        return 0.0, COARSEST_INTERVAL
    for m in active:
        _validate(m)
    scale = min(_step_scale(m) for m in active)
    interval = min(COARSEST_INTERVAL, max(FINEST_INTERVAL, 4 * scale))
    previous = _epsilon_at(active, delta, interval)
    while interval > FINEST_INTERVAL:
        interval = max(FINEST_INTERVAL, interval / REFINE)
        current = _epsilon_at(active, delta, interval)
        settled = abs(previous - current) <= 15 * max(2.5e-4, 1e-3 * current)
        previous = min(previous, current)
        if settled:
            break
    return previous, interval


def _epsilon(mechanisms: tuple[Mechanism, ...], delta: float) -> float:
    return _epsilon_settled(mechanisms, delta)[0]


def epsilon_spent(mechanisms: list[Mechanism], delta: float, preferred: str = ACCOUNTANT) -> EpsilonReport:
    """Epsilon of the composition of ``mechanisms`` at ``delta``, from the PLD accountant.

    ``preferred`` is kept for callers that pass a budget's or policy's stored choice ("prv", "rdp" from before): the
    PLD accountant is tighter than both and still sound, so it answers whatever was stored.
    """
    if not any(m.steps > 0 for m in mechanisms):
        return EpsilonReport(0.0, delta, ACCOUNTANT, "no steps taken")
    return EpsilonReport(_epsilon(tuple(mechanisms), float(delta)), delta, ACCOUNTANT, LABEL)


def noise_for_target(
    *, target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = ACCOUNTANT
) -> tuple[float, str]:
    """The smallest noise multiplier (to within the tolerance) whose PLD epsilon is at most the target.

    Bisection on sigma with the same accountant that reports the run's epsilon, so a run calibrated for a target
    never reports more than it. ``accountant`` is accepted for old callers and ignored, as in ``epsilon_spent``.
    """
    if target_epsilon <= 0:
        raise ValueError("the target epsilon must be positive")
    if steps <= 0:
        raise ValueError("steps must be positive")

    def fine(sigma: float) -> float:
        return _epsilon((Mechanism(sigma, sample_rate, steps),), float(delta))

    # Epsilon falls as sigma grows; ``high`` always meets the target. Bracket within a factor of 2, then narrow
    # geometrically with the reporting accountant itself (its grid depends on sigma, so a fixed coarse grid would
    # misplace the bracket for small q).
    low, high = 1.0, 1.0
    if fine(high) > target_epsilon:
        while fine(high) > target_epsilon:
            low, high = high, high * 2
            if high > 1e4:
                raise ValueError(f"no noise multiplier up to 1e4 reaches epsilon {target_epsilon:g}")
    else:
        while low > 0.2 and fine(low) <= target_epsilon:
            high, low = low, low / 2
    for _ in range(3):
        middle = math.sqrt(low * high)
        if fine(middle) > target_epsilon:
            low = middle
        else:
            high = middle
    # Finish on the grid the reporting accountant settles on here: a pessimistic grid gives an upper bound at any
    # sigma, so bisecting on it (one computation per probe) never picks too little noise.
    _, interval = _epsilon_settled((Mechanism(high, sample_rate, steps),), float(delta))

    def probe(sigma: float) -> float:
        return _epsilon_at((Mechanism(sigma, sample_rate, steps),), delta, interval)

    for _ in range(40):
        if probe(high) >= target_epsilon - EPSILON_TOLERANCE or high - low < 1e-4 * high:
            break
        middle = (low + high) / 2
        if probe(middle) > target_epsilon:
            low = middle
        else:
            high = middle
    # The figure the run will report (its own grid) must meet the target too.
    while fine(high) > target_epsilon:
        high *= 1.002
    return float(high), ACCOUNTANT


def epsilon_tier(epsilon: float) -> str:
    return "strong" if epsilon <= 1 else "reasonable" if epsilon <= 10 else "weak"
