"""Privacy accounting for DP-SGD with Poisson sampling.

PRV (Gopi et al. 2021) gives the reported epsilon; when it fails or is out of its comfortable range (epsilon above 10,
tiny delta) the RDP bound is used and labelled "RDP upper bound". GDP is never used: it can underestimate.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass

from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from workers.engine.training.delta import default_delta  # noqa: F401 - re-exported

PRV_EPSILON_LIMIT = 10.0
logger = logging.getLogger(__name__)


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
    accountant: str  # "prv" or "rdp"
    label: str  # what to print beside the number

    def to_dict(self) -> dict:
        return asdict(self)


def check_delta(delta: float, n: int) -> None:
    if not 0 < delta < 1.0 / n:
        raise ValueError(f"delta {delta:g} must be below 1/n = {1.0 / n:.3g} (n = {n:,} people)")


def _history(mechanisms: list[Mechanism]) -> list[tuple[float, float, int]]:
    return [(m.noise_multiplier, m.sample_rate, m.steps) for m in mechanisms if m.steps > 0]


def rdp_epsilon(mechanisms: list[Mechanism], delta: float) -> float:
    accountant = RDPAccountant()
    accountant.history = _history(mechanisms)
    return float(accountant.get_epsilon(delta)) if accountant.history else 0.0


def epsilon_spent(mechanisms: list[Mechanism], delta: float, preferred: str = "prv") -> EpsilonReport:
    """Epsilon of the composition of ``mechanisms`` at ``delta`` (PRV, falling back to RDP)."""
    history = _history(mechanisms)
    if not history:
        return EpsilonReport(0.0, delta, preferred, "no steps taken")
    rdp = rdp_epsilon(mechanisms, delta)
    # PRV stalls far above its range; RDP (an upper bound, cheap) tells us when not to try.
    if preferred == "prv" and rdp <= 2 * PRV_EPSILON_LIMIT:
        try:
            accountant = PRVAccountant()
            accountant.history = history
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                epsilon = float(accountant.get_epsilon(delta))
            if math.isfinite(epsilon) and 0 <= epsilon <= PRV_EPSILON_LIMIT:
                return EpsilonReport(epsilon, delta, "prv", "PRV accountant")
        except Exception:  # noqa: BLE001 - PRV raises several kinds of numerical errors; RDP still bounds it
            logger.info("PRV accountant failed; reporting the RDP upper bound", exc_info=True)
    return EpsilonReport(rdp, delta, "rdp", "RDP upper bound")


def noise_for_target(
    *, target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "prv"
) -> tuple[float, str]:
    """The smallest noise multiplier meeting the target (PRV, or RDP when PRV cannot)."""
    if accountant == "prv" and target_epsilon <= PRV_EPSILON_LIMIT:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sigma = get_noise_multiplier(
                    target_epsilon=target_epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant="prv",
                    epsilon_tolerance=0.005,
                )
            return float(sigma), "prv"
        except Exception:  # noqa: BLE001 - same as above: fall back to RDP
            logger.info("PRV noise calibration failed; calibrating with RDP", exc_info=True)
    sigma = get_noise_multiplier(
        target_epsilon=target_epsilon,
        target_delta=delta,
        sample_rate=sample_rate,
        steps=steps,
        accountant="rdp",
        epsilon_tolerance=0.005,
    )
    return float(sigma), "rdp"


def epsilon_tier(epsilon: float) -> str:
    return "strong" if epsilon <= 1 else "reasonable" if epsilon <= 10 else "weak"
