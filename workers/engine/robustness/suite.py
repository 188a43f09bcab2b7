"""The robustness suite: accuracy and the policy's fairness metrics under perturbations of the held-out rows.

Perturbations (each level is one seeded draw; see ``perturb`` for what the preprocessing makes of them):
- ``gaussian_noise``: N(0, (level * std)^2) added to every numeric feature, std its training standard deviation;
- ``category_flip``: each categorical cell becomes another training category with probability ``level``;
- ``missing``: each feature cell becomes missing with probability ``level``;
- ``fgsm`` / ``pgd``: adversarial examples against the true labels on the continuous inputs, L-infinity radius
  ``level`` in standard deviations, kept inside the range the preprocessing can produce (``perturb.input_bounds``);
  PGD takes ``PGD_ITERATIONS`` steps of ``level * PGD_STEP_FRACTION`` from the unperturbed point. Their entries
  carry ``moved_share`` (rows the attack changed) and, when it changed none, ``not_judged``: gates read them as
  unknown.
Fairness is computed by ``workers.engine.evaluation.evaluate.evaluate`` on the perturbed predictions with the
ORIGINAL rows' sensitive attributes (the perturbation changes what the model sees, not who a person is); a metric's
value is its worst grouping's, as a fairness gate reads it, and None where a judged grouping leaves it undefined.
Levels named by the policy's robustness gates are added to the levels tried, so those gates can be judged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from workers.engine.evaluation.evaluate import DIRECTION, Policy, evaluate
from workers.engine.robustness.adversarial import fgsm, pgd
from workers.engine.robustness.gates import KINDS, robustness_gates_of, same_level
from workers.engine.robustness.perturb import (
    category_flip,
    continuous_mask,
    gaussian_noise,
    inject_missing,
    input_bounds,
)
from workers.engine.training.data import PreprocessSpec, transform

ENGINE_VERSION = "attest-robustness-1"
PGD_ITERATIONS = 10
PGD_STEP_FRACTION = 0.25  # 10 steps of eps / 4 (Madry et al.'s 2.5 * eps / iterations)


def _policy_metrics(policy: dict[str, Any]) -> list[str]:
    """Fairness metrics named by the fairness gates and the robustness gates, in policy order, once each."""
    named = [g.get("metric") for g in policy.get("gates") or [] if isinstance(g, dict) and "kind" not in g]
    named += [g.get("metric") for g in robustness_gates_of(policy)]
    return list(dict.fromkeys(m for m in named if m in DIRECTION))


def _levels(defaults: tuple[float, ...], kind: str, gates: list[dict[str, Any]]) -> list[float]:
    levels = [float(v) for v in defaults]
    for gate in gates:
        if gate.get("kind") == kind and not any(same_level(float(gate["level"]), v) for v in levels):
            levels.append(float(gate["level"]))
    return sorted(levels)


def _logits(model: nn.Module, inputs: np.ndarray | torch.Tensor) -> np.ndarray:
    tensor = torch.from_numpy(inputs) if isinstance(inputs, np.ndarray) else inputs
    with torch.no_grad():
        return model(tensor).detach().cpu().numpy()


def robustness_suite(
    model: Any,
    prep: PreprocessSpec,
    rows: pd.DataFrame,
    *,
    labels: np.ndarray,
    policy: dict[str, Any],
    seed: int,
    noise_scales: tuple[float, ...] = (0.1, 0.25, 0.5),
    flip_rates: tuple[float, ...] = (0.05, 0.1, 0.2),
    missing_rates: tuple[float, ...] = (0.05, 0.1, 0.2),
    adversarial_eps: tuple[float, ...] = (0.05, 0.1, 0.25),
) -> dict[str, Any]:
    """Baseline and perturbed accuracy and fairness of ``model`` on ``rows`` (held-out rows, with the sensitive
    attributes) whose encoded ``labels`` are given; see the module docstring."""
    rows = rows.reset_index(drop=True)
    labels = np.asarray(labels).astype(np.int64)
    if len(labels) != len(rows):
        raise ValueError(f"{len(labels)} labels for {len(rows)} rows")
    gates = robustness_gates_of(policy)
    binary = len(prep.classes) == 2
    metrics = _policy_metrics(policy) if binary else []
    evaluation_policy = Policy(
        sensitive_attributes=list(policy.get("sensitive_attributes") or []),
        # Thresholds no value can fail: only each metric's worst value (or None, when undefined) is wanted here.
        gates=[{"metric": m, "threshold": np.inf if DIRECTION[m] == "max" else -np.inf} for m in metrics],
        min_group_size=int(policy.get("min_group_size", 30)),
        intersections=bool(policy.get("intersections", True)),
        normalised_attributes=list(policy.get("normalised_attributes") or []),
    )

    def measure(logits: np.ndarray) -> dict[str, Any]:
        if not binary:
            return {"accuracy": float((logits.argmax(axis=1) == labels).mean()), "fairness": {}}
        scores = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
        result = evaluate(
            y_true=labels, y_score=scores, sensitive=rows, policy=evaluation_policy, seed=seed, resamples=0
        )
        return {
            "accuracy": result["overall"]["accuracy"],
            "fairness": {gate["metric"]: gate["value"] for gate in result["gates"]},
        }

    baseline = measure(_logits(model, transform(rows, prep)))
    notes = [
        "Each random perturbation is one draw seeded from the evaluation seed; the sensitive attributes used for "
        "grouping are the rows' recorded values, never the perturbed ones.",
        "A fairness value is the worst over the policy's groupings; None where a judged grouping leaves it undefined.",
    ]
    if not binary:
        notes.append("Fairness metrics are defined for binary outcomes; this multiclass model shows accuracy only.")
    perturbations: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []

    def record(kind: str, level: float, logits: np.ndarray, **extra: Any) -> None:
        measured = measure(logits)
        change = {}
        for metric in metrics:
            before, after = baseline["fairness"].get(metric), measured["fairness"].get(metric)
            change[metric] = None if before is None or after is None else after - before
        accuracy = measured["accuracy"]
        perturbations.append(
            {
                "kind": kind,
                "level": level,
                "accuracy": accuracy,
                "accuracy_drop": (
                    None if accuracy is None or baseline["accuracy"] is None else baseline["accuracy"] - accuracy
                ),
                "fairness": measured["fairness"],
                "fairness_change": change,
                **extra,
            }
        )

    def draw(kind: str, index: int) -> np.random.Generator:
        # One stream per (kind, level): a level's draw does not depend on which other perturbations ran.
        return np.random.default_rng([seed, KINDS.index(kind), index])

    random_kinds = [
        ("gaussian_noise", noise_scales, gaussian_noise, "scale", bool(prep.numeric), "no numeric features"),
        ("category_flip", flip_rates, category_flip, "rate", bool(prep.categorical), "no categorical features"),
        ("missing", missing_rates, inject_missing, "rate", bool(prep.feature_order), "no features"),
    ]
    for kind, defaults, perturb, argument, applicable, why_not in random_kinds:
        if not applicable:
            skipped.append({"kind": kind, "reason": f"the model has {why_not} to perturb"})
            continue
        for index, level in enumerate(_levels(defaults, kind, gates)):
            changed = perturb(rows, prep, **{argument: level}, rng=draw(kind, index))
            record(kind, level, _logits(model, transform(changed, prep)))

    mask = continuous_mask(prep)
    if not isinstance(model, nn.Module):
        for kind in ("fgsm", "pgd"):
            skipped.append({"kind": kind, "reason": "the model has no gradients (adversarial examples need them)"})
    elif not mask.any():
        for kind in ("fgsm", "pgd"):
            skipped.append({"kind": kind, "reason": "the model has no continuous features to perturb"})
    else:
        inputs = torch.from_numpy(transform(rows, prep))
        targets = torch.from_numpy(labels)
        mask_tensor = torch.from_numpy(mask)
        low, high = input_bounds(prep)
        bounds = (torch.from_numpy(low), torch.from_numpy(high))

        def attacked(kind: str, level: float, adversarial: torch.Tensor, **extra: Any) -> None:
            moved = float(((adversarial - inputs) != 0).any(dim=1).double().mean())
            if moved == 0:
                # Zero input gradients everywhere (a step-function model masks them): the attack did not run in
                # effect, and an unchanged accuracy would prove nothing.
                extra["not_judged"] = "the attack moved no input (the model's input gradients are zero)"
            record(kind, level, _logits(model, adversarial), moved_share=moved, **extra)

        for level in _levels(adversarial_eps, "fgsm", gates):
            attacked("fgsm", level, fgsm(model, inputs, targets, eps=level, mask=mask_tensor, bounds=bounds))
        for level in _levels(adversarial_eps, "pgd", gates):
            step = level * PGD_STEP_FRACTION
            adversarial = pgd(
                model, inputs, targets, eps=level, step=step, iterations=PGD_ITERATIONS, mask=mask_tensor, bounds=bounds
            )
            attacked("pgd", level, adversarial, step=step, iterations=PGD_ITERATIONS)
        notes.append(
            "FGSM and PGD move only the continuous inputs, by at most the level in standard deviations, within the "
            "range the preprocessing can produce; they use the true labels (a white-box, worst-case test)."
        )
    if prep.feature_order:
        notes.append(
            "Missing values: a numeric one becomes its training mean; a categorical one goes where the training rows' "
            "missing values went (their text, such as 'nan', when that was a training category), otherwise to the "
            "'unknown' column."
        )
    return {
        "engine_version": ENGINE_VERSION,
        "seed": seed,
        "rows": len(rows),
        "baseline": baseline,
        "perturbations": perturbations,
        "skipped": skipped,
        "notes": notes,
    }
