"""Membership-inference audit of a trained model: a loss-threshold attack (Yeom et al. 2018) and, when the data
allow reference models, a difficulty-calibrated attack (Watson et al. 2022; offline LiRA, Carlini et al. 2022).

Members are training rows, non-members held-out rows. A lower loss suggests membership. We report the attack's ROC
AUC, its TPR at 0.1% and 1% FPR, and an empirical epsilon lower bound: for any threshold an (epsilon, delta)-DP
training satisfies TPR <= e^eps FPR + delta and (1 - FPR) <= e^eps (1 - TPR) + delta (Kairouz et al. 2015), so
    eps >= max( log((TPR - delta) / FPR), log((1 - FPR - delta) / (1 - TPR)) ).
To turn counts into a bound that holds with 95% confidence we use Clopper-Pearson intervals: the lower limit of TPR
and the upper limit of FPR (Jagielski et al. 2020; Nasr et al. 2021). The threshold is chosen on the same data, so
the bound is optimistic by a small multiple-testing margin; it is a diagnostic, not a certificate. A lower bound
above the proven epsilon means the accounting is wrong and is raised as an accounting fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import beta

ENGINE_VERSION = "attest-mia-2"


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    alpha = 1 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def _roc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attack ROC: higher score = 'member'. Returns thresholds, TP counts and FP counts at each threshold."""
    scores = np.concatenate([member_scores, nonmember_scores])
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    tp, fp = np.cumsum(labels), np.cumsum(1 - labels)
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    return scores[last_of_tie], tp[last_of_tie], fp[last_of_tie]


def _cp_bounds(successes: np.ndarray, trials: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Clopper-Pearson limits (same as ``clopper_pearson`` element by element)."""
    alpha = 1 - confidence
    successes = successes.astype(float)
    with np.errstate(invalid="ignore"):
        low = np.where(successes == 0, 0.0, beta.ppf(alpha / 2, successes, trials - successes + 1))
        high = np.where(successes == trials, 1.0, beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def epsilon_lower_bound(
    tp: np.ndarray, fp: np.ndarray, members: int, nonmembers: int, delta: float, confidence: float = 0.95
) -> dict[str, Any]:
    tpr_low, _tpr_high = _cp_bounds(tp, members, confidence)
    _fpr_low, fpr_high = _cp_bounds(fp, nonmembers, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where((fpr_high > 0) & (tpr_low - delta > 0), np.log((tpr_low - delta) / fpr_high), 0.0)
        second = np.where(
            (tpr_low < 1) & (1 - fpr_high - delta > 0), np.log((1 - fpr_high - delta) / (1 - tpr_low)), 0.0
        )
    candidates = np.nan_to_num(np.maximum(first, second), nan=0.0, posinf=0.0)
    if candidates.size == 0 or candidates.max() <= 0:
        return {"epsilon": 0.0, "tpr": None, "fpr": None}
    best = int(candidates.argmax())
    return {"epsilon": float(candidates[best]), "tpr": float(tp[best] / members), "fpr": float(fp[best] / nonmembers)}


def audit_from_scores(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    attack: str,
    proven_epsilon: float | None,
    delta: float,
) -> dict[str, Any]:
    """ROC AUC, TPR at low FPR and the epsilon lower bound of an attack whose higher score means 'member'."""
    members, nonmembers = len(member_scores), len(nonmember_scores)
    thresholds, tp, fp = _roc(np.asarray(member_scores, float), np.asarray(nonmember_scores, float))
    tpr, fpr = tp / members, fp / nonmembers
    auc = float(np.trapezoid(np.r_[0, tpr], np.r_[0, fpr]))
    bound = epsilon_lower_bound(tp, fp, members, nonmembers, delta)

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
        "bound_at": {"tpr": bound["tpr"], "fpr": bound["fpr"]},
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
    figures are those of the attack with the larger lower bound; an accounting fault is raised by either."""
    attacks = [audit_from_scores(-np.asarray(member_losses, float), -np.asarray(nonmember_losses, float),
                                 attack="loss threshold", proven_epsilon=proven_epsilon, delta=delta)]
    if reference_member_losses is not None and reference_nonmember_losses is not None:
        references = len(np.atleast_2d(reference_member_losses))
        attacks.append(audit_from_scores(
            calibrated_scores(member_losses, reference_member_losses),
            calibrated_scores(nonmember_losses, reference_nonmember_losses),
            attack=f"calibrated with {references} reference models", proven_epsilon=proven_epsilon, delta=delta))
    strongest = max(attacks, key=lambda a: (a["empirical_epsilon_lower_bound"], a["auc"]))
    return {
        "engine_version": ENGINE_VERSION,
        **strongest,
        "attacks": attacks,
        "accounting_fault": any(a["accounting_fault"] for a in attacks),
        "confidence": 0.95,
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
