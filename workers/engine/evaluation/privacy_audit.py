"""Membership-inference audit of a trained model: a loss-threshold attack (Yeom et al. 2018) and, when the data
allow reference models, a difficulty-calibrated attack (Watson et al. 2022; offline LiRA, Carlini et al. 2022).

Members are training rows, non-members held-out rows. A lower loss suggests membership. We report the attack's ROC
AUC, its TPR at 0.1% and 1% FPR, and an empirical epsilon lower bound: for any threshold an (epsilon, delta)-DP
training satisfies TPR <= e^eps FPR + delta and (1 - FPR) <= e^eps (1 - TPR) + delta (Kairouz et al. 2015), so
    eps >= max( log((TPR - delta) / FPR), log((1 - FPR - delta) / (1 - TPR)) ).
To turn counts into a bound that holds with 95% confidence we use Clopper-Pearson limits: the lower limit of TPR and
the upper limit of FPR (Jagielski et al. 2020; Nasr et al. 2021), each one-sided at half the error level, so both hold
together with the stated confidence and then so do both inequalities.

That guarantee needs a threshold fixed before the counts are looked at: searching every threshold on the same scores
and keeping the best is a multiple test, and the "95%" bound then exceeds a true epsilon far more often than 5% of
the time. So each attack's members and non-members are split at random (seeded) into two halves. The threshold is
chosen on the selection half (the one whose bound, predicted at the certification half's size, is largest) and the
bound is computed once, at that threshold, on the certification half, which played no part in the choice. With several
attacks the headline is the largest of their bounds, so each is certified at 1 - 0.05 / (number of attacks)
(Bonferroni): the headline, and any accounting fault it raises, then holds at 95%. A lower bound above the proven
epsilon means the accounting is wrong and is raised as an accounting fault. AUC and TPR at low FPR use every row: they
describe the attack and certify nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import beta

ENGINE_VERSION = "attest-mia-3"
CONFIDENCE = 0.95
SELECTION_SHARE = 0.5


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    alpha = 1 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def _roc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attack ROC: higher score = 'member'. Returns thresholds, TP counts and FP counts at each threshold (a row is
    called a member when its score is at least the threshold)."""
    scores = np.concatenate([member_scores, nonmember_scores])
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    tp, fp = np.cumsum(labels), np.cumsum(1 - labels)
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    return scores[last_of_tie], tp[last_of_tie], fp[last_of_tie]


def _cp_bounds(successes: np.ndarray, trials: float, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Clopper-Pearson limits (same as ``clopper_pearson`` element by element; ``successes`` may be
    fractional when predicting a bound at another sample size)."""
    alpha = 1 - confidence
    successes = np.asarray(successes, float)
    with np.errstate(invalid="ignore"):
        low = np.where(successes <= 0, 0.0, beta.ppf(alpha / 2, np.maximum(successes, 1e-12), trials - successes + 1))
        high = np.where(
            successes >= trials, 1.0, beta.ppf(1 - alpha / 2, successes + 1, np.maximum(trials - successes, 1e-12))
        )
    return low, high


def _bounds(
    tp: np.ndarray, fp: np.ndarray, members: float, nonmembers: float, delta: float, confidence: float
) -> np.ndarray:
    """The epsilon lower bound at each threshold (0 where the counts prove nothing)."""
    tpr_low, _tpr_high = _cp_bounds(tp, members, confidence)
    _fpr_low, fpr_high = _cp_bounds(fp, nonmembers, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where((fpr_high > 0) & (tpr_low - delta > 0), np.log((tpr_low - delta) / fpr_high), 0.0)
        second = np.where(
            (tpr_low < 1) & (1 - fpr_high - delta > 0), np.log((1 - fpr_high - delta) / (1 - tpr_low)), 0.0
        )
    return np.maximum(np.nan_to_num(np.maximum(first, second), nan=0.0, posinf=0.0), 0.0)


def _split(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(count)
    cut = int(round(count * SELECTION_SHARE))
    return order[:cut], order[cut:]


def certified_bound(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    delta: float,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Choose the threshold on a random half of each side, certify the bound on the other half (see the module
    docstring). Returns the bound, the threshold and the certification half's rates and sizes."""
    member_scores, nonmember_scores = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    select_m, certify_m = _split(len(member_scores), rng)
    select_n, certify_n = _split(len(nonmember_scores), rng)
    result: dict[str, Any] = {
        "epsilon": 0.0,
        "threshold": None,
        "tpr": None,
        "fpr": None,
        "selection": {"members": len(select_m), "nonmembers": len(select_n)},
        "certification": {"members": len(certify_m), "nonmembers": len(certify_n)},
    }
    if min(len(select_m), len(select_n), len(certify_m), len(certify_n)) == 0:
        return result
    thresholds, tp, fp = _roc(member_scores[select_m], nonmember_scores[select_n])
    # The bound each threshold would give on the certification half if its rates there were those seen here.
    scale_m, scale_n = len(certify_m) / len(select_m), len(certify_n) / len(select_n)
    predicted = _bounds(tp * scale_m, fp * scale_n, len(certify_m), len(certify_n), delta, confidence)
    threshold = float(thresholds[int(predicted.argmax())])
    held_tp = float((member_scores[certify_m] >= threshold).sum())
    held_fp = float((nonmember_scores[certify_n] >= threshold).sum())
    epsilon = float(
        _bounds(np.array([held_tp]), np.array([held_fp]), len(certify_m), len(certify_n), delta, confidence)[0]
    )
    result.update(epsilon=epsilon, threshold=threshold, tpr=held_tp / len(certify_m), fpr=held_fp / len(certify_n))
    return result


def audit_from_scores(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    attack: str,
    proven_epsilon: float | None,
    delta: float,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, Any]:
    """ROC AUC, TPR at low FPR and the certified epsilon lower bound of an attack whose higher score means 'member'.
    The split into selection and certification halves is drawn from ``seed``."""
    member_scores = np.asarray(member_scores, float)
    nonmember_scores = np.asarray(nonmember_scores, float)
    members, nonmembers = len(member_scores), len(nonmember_scores)
    _thresholds, tp, fp = _roc(member_scores, nonmember_scores)
    tpr, fpr = tp / max(members, 1), fp / max(nonmembers, 1)
    auc = float(np.trapezoid(np.r_[0, tpr], np.r_[0, fpr]))
    bound = certified_bound(
        member_scores, nonmember_scores, delta=delta, confidence=confidence, rng=np.random.default_rng(seed)
    )

    def tpr_at(target: float) -> float:
        allowed = fpr <= target
        return float(tpr[allowed].max()) if allowed.any() else 0.0

    return {
        "attack": attack,
        "members": members,
        "nonmembers": nonmembers,
        "auc": auc,
        "tpr_at_fpr_0_001": tpr_at(0.001),
        "tpr_at_fpr_0_01": tpr_at(0.01),
        "empirical_epsilon_lower_bound": bound["epsilon"],
        "bound_at": {"tpr": bound["tpr"], "fpr": bound["fpr"], "threshold": bound["threshold"]},
        "bound_confidence": confidence,
        "selection": bound["selection"],
        "certification": bound["certification"],
        "accounting_fault": bool(proven_epsilon is not None and bound["epsilon"] > proven_epsilon),
    }


def calibrated_scores(target_loss: np.ndarray, reference_losses: np.ndarray, min_std: float = 1e-3) -> np.ndarray:
    """Difficulty-calibrated membership scores (Watson et al. 2022; the offline variant of LiRA, Carlini et al. 2022):
    how much lower the target's loss on an example is than the losses of reference models that never saw it, in units
    of their spread. ``reference_losses`` has one row per reference model."""
    reference_losses = np.atleast_2d(np.asarray(reference_losses, float))
    mean = reference_losses.mean(axis=0)
    spread = reference_losses.std(axis=0, ddof=1) if len(reference_losses) > 1 else np.ones_like(mean)
    return (mean - np.asarray(target_loss, float)) / np.maximum(spread, min_std)


def membership_audit(
    member_losses: np.ndarray,
    nonmember_losses: np.ndarray,
    *,
    proven_epsilon: float | None,
    delta: float,
    reference_member_losses: np.ndarray | None = None,
    reference_nonmember_losses: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The audit: the loss-threshold attack, and the calibrated attack when reference losses are given. The headline
    figures are those of the attack with the larger lower bound; each attack's bound is certified at
    1 - 0.05 / attacks, so the headline (the largest) and the accounting fault hold at 95%. Both attacks use the same
    split of the rows (drawn from ``seed``)."""
    calibrated = reference_member_losses is not None and reference_nonmember_losses is not None
    confidence = 1 - (1 - CONFIDENCE) / (2 if calibrated else 1)
    attacks = [
        audit_from_scores(
            -np.asarray(member_losses, float),
            -np.asarray(nonmember_losses, float),
            attack="loss threshold",
            proven_epsilon=proven_epsilon,
            delta=delta,
            confidence=confidence,
            seed=seed,
        )
    ]
    if calibrated:
        references = len(np.atleast_2d(reference_member_losses))
        attacks.append(
            audit_from_scores(
                calibrated_scores(member_losses, reference_member_losses),
                calibrated_scores(nonmember_losses, reference_nonmember_losses),
                attack=f"calibrated with {references} reference models",
                proven_epsilon=proven_epsilon,
                delta=delta,
                confidence=confidence,
                seed=seed,
            )
        )
    strongest = max(attacks, key=lambda a: (a["empirical_epsilon_lower_bound"], a["auc"]))
    return {
        "engine_version": ENGINE_VERSION,
        **strongest,
        "attacks": attacks,
        "accounting_fault": bool(
            proven_epsilon is not None and strongest["empirical_epsilon_lower_bound"] > proven_epsilon
        ),
        "confidence": CONFIDENCE,
        "threshold_selection": "held-out split",
        "delta": delta,
        "proven_epsilon": proven_epsilon,
        "seed": seed,
    }


def loss_threshold_audit(
    member_losses: np.ndarray,
    nonmember_losses: np.ndarray,
    *,
    proven_epsilon: float | None,
    delta: float,
    max_points: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """The loss-threshold attack alone; members and non-members balanced by subsampling to the smaller count."""
    rng = np.random.default_rng(seed)
    size = min(len(member_losses), len(nonmember_losses), max_points)
    members = rng.choice(np.asarray(member_losses, float), size, replace=False)
    nonmembers = rng.choice(np.asarray(nonmember_losses, float), size, replace=False)
    return membership_audit(members, nonmembers, proven_epsilon=proven_epsilon, delta=delta, seed=seed)
