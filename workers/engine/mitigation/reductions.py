"""The exponentiated-gradient reduction (Agarwal, Beygelzimer, Dudik, Langford and Wallach 2018), as fairlearn 0.15's
``ExponentiatedGradient`` runs it, with the learner as a callback so the portal can plug in (DP) training.

The reduction looks for the randomised mixture of classifiers with the least error subject to a fairness moment:
- ``demographic_parity``: for every group g, |P(h = 1 | g) - P(h = 1)| <= eps;
- ``equalized_odds``: the same within each label value y (true and false positive rates).
It plays a saddle-point game: the lambda player updates Lagrange multipliers by exponentiated gradient (fairlearn's
B = 1 / eps, eta = eta0 / B, shrinking eta when the duality gap stalls), the h player answers each lambda with a
cost-sensitive classification problem: every row gets a label (1 where predicting 1 is cheaper) and a weight (the
cost difference, normalised to mean 1). Every iteration also solves a small linear programme over the classifiers
found so far (fairlearn's ``run_linprog_step``) and keeps whichever of the two mixtures has the smaller gap; the
duality-gap estimate itself asks the learner for best responses to 1, 2, 5 and 10 times the averaged multipliers.

Learner calls. ``fit_weighted(sample_weight, labels)`` trains ONE classifier on the caller's training rows with those
per-row weights (mean 1; a DP learner rescales them into [0, 1], see ``trainer.train(sample_weight=...)``) and the
reduction's labels (NOT the original labels: a learner that ignores them solves the wrong problem), and returns a
predictor ``predict(X) -> 0/1 array``. Each call is a training run; with DP training each one spends privacy budget,
so: identical weighted problems are answered from a cache (a deterministic learner would return the same model),
a problem whose labels are all one value gets a constant predictor without training (fairlearn's DummyClassifier),
``calls`` counts the real training runs, and ``max_calls`` caps them (the loop stops before exceeding it and keeps
the best mixture so far).

Wiring DP training in: ``workers.engine.training.trainer.train`` takes the labels from the frame's label column and
splits the rows stratified by it, so writing the reduction's labels into that column would also move rows between
train, validation and test. The learner must train on the parent run's training rows (those passed here as ``X``)
with the reduction's labels, e.g. by giving ``train`` the recorded split rather than letting it re-split.

Privacy caveat, for the job that wires in DP training: the weights and labels of every call are computed from the
training rows (group rates and earlier models' predictions on them), so they are themselves functions of the data.
DP-SGD's per-run accounting covers each run with its weights taken as given; it does not cover what those
weights reveal across runs. A DP reduction must also privatise those statistics (Jagielski et al. 2019) or account
for them; this engine does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as opt

from workers.engine.mitigation.thresholds import group_keys

ENGINE_VERSION = "attest-reductions-1 (fairlearn 0.15 ExponentiatedGradient)"
CONSTRAINTS = ("demographic_parity", "equalized_odds")
# fairlearn's ExponentiatedGradient constants (reductions/_exponentiated_gradient/_constants.py).
_PRECISION = 1e-8
_ACCURACY_MUL = 0.5
_REGRET_CHECK_START_T = 5
_REGRET_CHECK_INCREASE_T = 1.6
_SHRINK_REGRET = 0.8
_SHRINK_ETA = 0.8
_MIN_ITER = 5

Predictor = Callable[[Any], np.ndarray]
Learner = Callable[[np.ndarray, np.ndarray], Predictor]


class ConstantPredictor:
    """Predicts one label for every row (the answer to a problem whose labels are all that label)."""

    def __init__(self, value: int) -> None:
        self.value = int(value)

    def __call__(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.value, dtype=np.int64)

    def __repr__(self) -> str:
        return f"ConstantPredictor({self.value})"


class LearnerBudgetExhausted(Exception):
    """The next best response would need a training run beyond ``max_calls``."""


class _ParityMoment:
    """fairlearn's ``UtilityParity`` with ratio 1 and a difference bound, for h(X) in {0, 1}.

    Constraints are indexed ("+", e, g) then ("-", e, g) over the (event, group) pairs present, events and groups in
    sorted order: gamma("+", e, g) = E[h | e, g] - E[h | e], gamma("-", e, g) its negative, each bounded by eps.
    """

    def __init__(self, y: np.ndarray, codes: np.ndarray, constraint: str, bound: float) -> None:
        n = len(y)
        events = np.zeros(n, dtype=np.int64) if constraint == "demographic_parity" else y.astype(np.int64)
        self.pairs = sorted({(int(e), int(g)) for e, g in zip(events, codes, strict=True)})
        self.n = n
        prob_event = np.bincount(events) / n
        k = len(self.pairs)
        self.U = np.zeros((n, 2 * k))
        self.group_prob = np.zeros(k)  # P(g | e) per pair
        self.event_of = np.array([e for e, _g in self.pairs])
        for j, (e, g) in enumerate(self.pairs):
            event_select = (events == e).astype(float)
            group_event_select = event_select * (codes == g)
            prob_group_event = group_event_select.sum() / n
            self.U[:, j] = event_select / prob_event[e] + (-1.0) * group_event_select / prob_group_event
            self.U[:, k + j] = (-1.0) * event_select / prob_event[e] + group_event_select / prob_group_event
            self.group_prob[j] = prob_group_event / prob_event[e]
        self.bound = np.full(2 * k, bound)

    def gamma(self, predictions: np.ndarray) -> np.ndarray:
        return -(self.U.T @ predictions) / self.n

    def signed_weights(self, lambda_vec: np.ndarray) -> np.ndarray:
        return self.U @ lambda_vec

    def project_lambda(self, lambda_vec: np.ndarray) -> np.ndarray:
        """fairlearn 0.15's projection: per event, shift the signed multipliers by their P(g | e)-weighted median
        (the Lagrangian cannot tell such shifts apart), then split into positive and negative parts."""
        k = len(self.pairs)
        signed = (lambda_vec[:k] - lambda_vec[k:]).astype(np.float64)
        for event in dict.fromkeys(self.event_of.tolist()):
            index = np.flatnonzero(self.event_of == event)
            event_prob = self.group_prob[index]
            normalized = signed[index] / event_prob
            order = np.argsort(normalized, kind="stable")
            median = np.searchsorted(np.cumsum(event_prob[order]), event_prob.sum() / 2)
            signed[index] = signed[index] - event_prob * normalized[order[median]]
        return np.concatenate([np.clip(signed, 0.0, None), np.clip(-signed, 0.0, None)])


class _Lagrangian:
    def __init__(
        self,
        X: Any,
        y: np.ndarray,
        moment: _ParityMoment,
        B: float,
        learner: Learner,
        max_calls: int | None,
    ) -> None:
        self.X, self.y, self.moment, self.B, self.learner = X, y, moment, B, learner
        self.max_calls = max_calls
        self.objective_weights = -1.0 + 2.0 * y  # ErrorRate's signed weights (costs 1 and 1)
        self.predictors: list[Predictor] = []
        self.predictions: list[np.ndarray] = []
        self.errors: list[float] = []
        self.gammas: list[np.ndarray] = []
        self.calls = 0  # training runs
        self.oracle_calls = 0  # best responses asked for (fairlearn's n_oracle_calls)
        self.constant_calls = 0
        self.cache_hits = 0
        self._cache: dict[str, tuple[Predictor, np.ndarray]] = {}
        self._last_linprog: tuple[int, Any] | None = None

    def _call_oracle(self, lambda_vec: np.ndarray) -> tuple[Predictor, np.ndarray]:
        signed = self.objective_weights + self.moment.signed_weights(lambda_vec)
        labels = (signed > 0).astype(np.int64)
        self.oracle_calls += 1
        if len(np.unique(labels)) == 1:
            self.constant_calls += 1
            predictor: Predictor = ConstantPredictor(int(labels[0]))
            return predictor, predictor(self.X).astype(np.float64)
        # Two labels present means some signed weight is non-zero: the sum is positive.
        weights = np.abs(signed)
        weights = self.moment.n * weights / weights.sum()
        key = hashlib.sha256(labels.tobytes() + weights.tobytes()).hexdigest()
        if key in self._cache:
            self.cache_hits += 1
            return self._cache[key]
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise LearnerBudgetExhausted
        self.calls += 1
        predictor = self.learner(weights, labels)
        predicted = np.asarray(predictor(self.X)).reshape(-1)
        if predicted.shape != (self.moment.n,) or not np.isin(predicted, (0, 1)).all():
            raise ValueError("The learner's predictor must return one 0/1 label per row of X.")
        self._cache[key] = (predictor, predicted.astype(np.float64))
        return self._cache[key]

    def best_h(self, lambda_vec: np.ndarray) -> int:
        """Index of the best response to ``lambda_vec`` among the classifiers so far and a newly trained one."""
        predictor, predicted = self._call_oracle(lambda_vec)
        error = float(np.abs(self.y - predicted).mean())
        gamma = self.moment.gamma(predicted)
        value = error + gamma @ lambda_vec
        best_idx, best_value = -1, np.inf
        if self.errors:
            values = np.asarray(self.errors) + np.vstack(self.gammas) @ lambda_vec
            best_idx = int(np.argmin(values))
            best_value = float(values[best_idx])
        if value < best_value - _PRECISION:
            self.predictors.append(predictor)
            self.predictions.append(predicted)
            self.errors.append(error)
            self.gammas.append(gamma)
            best_idx = len(self.predictors) - 1
        return best_idx

    def _eval(self, Q: dict[int, float], lambda_vec: np.ndarray) -> tuple[float, float, np.ndarray, float]:
        index = list(Q)
        weights = np.array([Q[i] for i in index])
        error = float(np.asarray(self.errors)[index] @ weights)
        gamma = np.vstack([self.gammas[i] for i in index]).T @ weights
        projected = self.moment.project_lambda(lambda_vec)
        violation = gamma - self.moment.bound
        L = error + float(np.sum(projected * violation))
        L_high = error + (self.B * float(violation.max()) if violation.max() > 0 else 0.0)
        return L, L_high, gamma, error

    def eval_gap(self, Q: dict[int, float], lambda_hat: np.ndarray, nu: float) -> dict[str, Any]:
        L, L_high, gamma, error = self._eval(Q, lambda_hat)
        L_low = L
        for mul in (1.0, 2.0, 5.0, 10.0):
            h_idx = self.best_h(mul * lambda_hat)
            L_low_mul = self._eval({h_idx: 1.0}, lambda_hat)[0]
            L_low = min(L_low, L_low_mul)
            if max(L - L_low, L_high - L) > nu + _PRECISION:
                break
        return {
            "L": L,
            "L_low": L_low,
            "L_high": L_high,
            "gamma": gamma,
            "error": error,
            "gap": max(L - L_low, L_high - L),
        }

    def solve_linprog(self, nu: float) -> tuple[dict[int, float], np.ndarray, dict[str, Any]]:
        n_hs = len(self.predictors)
        if self._last_linprog is not None and self._last_linprog[0] == n_hs:
            return self._last_linprog[1]
        n_constraints = len(self.moment.bound)
        gammas = np.vstack(self.gammas).T  # constraints x classifiers
        c = np.concatenate([self.errors, [self.B]])
        A_ub = np.concatenate([gammas - self.moment.bound[:, None], -np.ones((n_constraints, 1))], axis=1)
        b_ub = np.zeros(n_constraints)
        A_eq = np.concatenate([np.ones((1, n_hs)), np.zeros((1, 1))], axis=1)
        b_eq = np.ones(1)
        primal = opt.linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, method="highs-ds")
        Q = {i: float(w) for i, w in enumerate(primal.x[:-1])}
        dual_c = np.concatenate([b_ub, -b_eq])
        dual_A_ub = np.concatenate([-A_ub.T, A_eq.T], axis=1)
        bounds = [(None, None) if i == n_constraints else (0, None) for i in range(n_constraints + 1)]
        dual = opt.linprog(dual_c, A_ub=dual_A_ub, b_ub=c, bounds=bounds, method="highs-ds")
        lambda_vec = dual.x[:-1]
        # Keyed, as fairlearn's, by the number of classifiers before this gap's own best responses add any.
        result = (Q, lambda_vec, self.eval_gap(Q, lambda_vec, nu))
        self._last_linprog = (n_hs, result)
        return result


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def exponentiated_gradient(
    fit_weighted: Learner,
    X: Any,
    y: np.ndarray,
    sensitive: np.ndarray,
    *,
    constraint: str,
    eps: float = 0.01,
    max_iter: int = 10,
    nu: float | None = None,
    eta0: float = 2.0,
    run_linprog_step: bool = True,
    max_calls: int | None = None,
) -> dict[str, Any]:
    """Fair randomised classifier by the reduction; see the module docstring for the learner contract.

    ``eps`` is both the allowed violation of the moment (fairlearn's ``difference_bound``) and the reduction's
    ``eps`` (B = 1 / eps), as ``ExponentiatedGradient(est, DemographicParity(difference_bound=eps), eps=eps)``.
    Returns the predictors and their mixture ``weights`` (see ``mixture_positive_probability``),
    ``calls`` (training runs), ``best_gap``, ``disparity`` (the mixture's largest |P(h=1 | e, g) - P(h=1 | e)| on the
    training rows: what eps bounds), ``error`` (its training error) and the per-iteration ``history``.
    """
    if constraint not in CONSTRAINTS:
        raise ValueError(f"unknown constraint {constraint!r}; choose one of {', '.join(CONSTRAINTS)}")
    if not eps > 0:
        raise ValueError("eps must be above 0")
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    y = np.asarray(y)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("Labels other than 0/1 were provided.")
    y = y.astype(np.float64)
    keys = group_keys(sensitive)
    if not len(y) == len(keys) == len(X) or len(y) == 0:
        raise ValueError("X, y and sensitive need the same, non-zero number of rows")
    names = sorted(set(keys.tolist()))
    position = {name: i for i, name in enumerate(names)}
    codes = np.array([position[key] for key in keys], dtype=np.int64)
    moment = _ParityMoment(y, codes, constraint, eps)
    B = 1 / eps
    lagrangian = _Lagrangian(X, y, moment, B, fit_weighted, max_calls)
    theta = np.zeros(len(moment.bound))
    Qsum: dict[int, float] = {}
    gaps_EG: list[float] = []
    gaps: list[float] = []
    Qs: list[dict[int, float]] = []
    history: list[dict[str, Any]] = []
    last_regret_checked, last_gap = _REGRET_CHECK_START_T, np.inf
    lambda_cumsum = np.zeros(len(moment.bound))
    eta = eta0 / B
    stopped = None
    try:
        for t in range(max_iter):
            lambda_vec = B * np.exp(theta) / (1 + np.exp(theta).sum())
            lambda_cumsum += lambda_vec
            lambda_EG = lambda_cumsum / (t + 1)
            h_idx = lagrangian.best_h(lambda_vec)
            if t == 0 and nu is None:
                nu = _ACCURACY_MUL * np.abs(lagrangian.predictions[h_idx] - y).std(ddof=1) / np.sqrt(len(y))
            assert nu is not None
            Qsum[h_idx] = Qsum.get(h_idx, 0.0) + 1.0
            gamma = lagrangian.gammas[h_idx]
            total = sum(Qsum.values())
            Q_EG = {i: count / total for i, count in Qsum.items()}
            result_EG = lagrangian.eval_gap(Q_EG, lambda_EG, nu)
            gaps_EG.append(result_EG["gap"])
            gap_LP, Q_LP, result_LP = np.inf, Q_EG, result_EG
            if t > 0 and run_linprog_step:
                Q_LP, _lambda_LP, result_LP = lagrangian.solve_linprog(nu)
                gap_LP = result_LP["gap"]
            if result_EG["gap"] < gap_LP:
                Qs.append(Q_EG)
                gaps.append(result_EG["gap"])
                chosen = result_EG
            else:
                Qs.append(Q_LP)
                gaps.append(gap_LP)
                chosen = result_LP
            history.append(
                {
                    "iteration": t,
                    "gap": _finite(gaps[t]),
                    "gap_eg": _finite(result_EG["gap"]),
                    "gap_lp": _finite(gap_LP),
                    "error": float(chosen["error"]),
                    "disparity": float(chosen["gamma"].max()),
                    "eta": float(eta),
                    "calls": lagrangian.calls,
                    "predictors": len(lagrangian.predictors),
                }
            )
            if gaps[t] < nu and t >= _MIN_ITER:
                stopped = "the duality gap fell below nu"
                break
            if t >= last_regret_checked * _REGRET_CHECK_INCREASE_T:
                best_gap = min(gaps_EG)
                if best_gap > last_gap * _SHRINK_REGRET:
                    eta *= _SHRINK_ETA
                last_regret_checked, last_gap = t, best_gap
            theta += eta * (gamma - moment.bound)
    except LearnerBudgetExhausted:
        stopped = f"the learner-call budget ({max_calls}) was reached"
        if not Qs:
            raise ValueError(
                f"max_calls={max_calls} does not allow one iteration of the reduction; allow more learner calls."
            ) from None
    best_iter = max(i for i, gap in enumerate(gaps) if gap <= min(gaps) + _PRECISION)
    weights = np.zeros(len(lagrangian.predictors))
    for index, weight in Qs[best_iter].items():
        weights[index] = weight
    used = [i for i in range(len(weights)) if weights[i] > 0]
    mixture_gamma = np.vstack(lagrangian.gammas).T @ weights
    return {
        "engine_version": ENGINE_VERSION,
        "constraint": constraint,
        "eps": eps,
        "max_iter": max_iter,
        "nu": float(nu) if nu is not None else None,
        "eta0": eta0,
        "groups": names,
        "predictors": list(lagrangian.predictors),
        "weights": weights,
        "calls": lagrangian.calls,
        "oracle_calls": lagrangian.oracle_calls,
        "constant_predictors": lagrangian.constant_calls,
        "cache_hits": lagrangian.cache_hits,
        "best_iter": best_iter,
        "last_iter": len(Qs) - 1,
        "best_gap": float(gaps[best_iter]),
        "disparity": float(mixture_gamma.max()),
        "error": float(np.asarray(lagrangian.errors) @ weights),
        "predictors_used": used,
        "stopped": stopped or f"max_iter ({max_iter}) reached",
        "history": history,
    }


def mixture_positive_probability(result: dict[str, Any], X: Any) -> np.ndarray:
    """Each row's probability of a positive prediction under the mixture (fairlearn's ``_pmf_predict`` column 1)."""
    probability = np.zeros(len(X))
    for predictor, weight in zip(result["predictors"], result["weights"], strict=True):
        if weight > 0:
            probability += weight * np.asarray(predictor(X), dtype=np.float64).reshape(-1)
    return probability
