"""Global explanations of a binary model on held-out rows: mean attributions per feature, overall and per group of
each sensitive attribute, and permutation importance with an interval.

Per-row attributions are personal data (they say why one person scored as they did), so only aggregates over at
least ``min_group_size`` rows leave this module; a smaller group is listed with its size and nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from workers.engine.evaluation.groups import groupings
from workers.engine.explain._model import (
    ExplanationError,
    explainable_copy,
    logit_threshold,
    logits,
    require_binary,
    split_first_linear,
)
from workers.engine.explain.attributions import (
    GAUSS_LEGENDRE_ORDER,
    attributions,
    explanation_baseline,
    feature_columns,
)
from workers.engine.training.data import PreprocessSpec, transform

# A feature must carry at least this share of the total mean |attribution| to be named as a group's largest gap:
# ratios of near-zero importances are noise.
GAP_MIN_SHARE = 0.01


def encoded_labels(labels: np.ndarray, prep: PreprocessSpec) -> np.ndarray:
    """Class indices (1 = ``prep.classes[1]``, the positive class); raw class names are mapped through the spec."""
    values = np.asarray(labels)
    if values.dtype.kind in "biu":
        if not np.isin(values, (0, 1)).all():
            raise ExplanationError("Labels must be class indices 0 and 1 (as encode_labels returns) or class names.")
        return values.astype(np.int64)
    index = {name: i for i, name in enumerate(prep.classes)}
    mapped = pd.Series(values.astype(str)).map(index)
    if mapped.isna().any():
        raise ExplanationError(f"Labels outside the model's classes {prep.classes}.")
    return mapped.to_numpy(np.int64)


def permutation_importance(
    model: nn.Module,
    prep: PreprocessSpec,
    inputs: np.ndarray,
    labels: np.ndarray,
    *,
    repeats: int,
    seed: int,
    threshold: float = 0.5,
) -> tuple[float, dict[str, np.ndarray]]:
    """Baseline accuracy and, per original feature, the accuracy drop of each of ``repeats`` shuffles.

    All of a feature's encoded columns move together, so a one-hot feature stays a valid one-hot vector."""
    cut = logit_threshold(threshold)
    split = split_first_linear(model)
    if split is not None:
        # Shuffling a few columns moves the first layer's output by W[:, cols] (shuffled - original): the wide
        # input product is computed once, not once per shuffle.
        first, rest = split
        with torch.no_grad():
            hidden = first(torch.as_tensor(inputs, dtype=first.weight.dtype)).double().numpy()
        weight = first.weight.detach().double().numpy()

        def shuffled_logits(cols: slice, order: np.ndarray) -> np.ndarray:
            moved = hidden + (inputs[order, cols] - inputs[:, cols]) @ weight[:, cols].T
            return logits(rest, moved)

        unshuffled = logits(rest, hidden)
    else:

        def shuffled_logits(cols: slice, order: np.ndarray) -> np.ndarray:
            shuffled = inputs.copy()
            shuffled[:, cols] = inputs[order, cols]
            return logits(model, shuffled)

        unshuffled = logits(model, inputs)
    accuracy = float(np.mean((unshuffled >= cut) == labels))
    rng = np.random.default_rng(seed)
    drops: dict[str, np.ndarray] = {}
    for name, cols in feature_columns(prep):
        drops[name] = np.array(
            [
                accuracy - float(np.mean((shuffled_logits(cols, rng.permutation(len(inputs))) >= cut) == labels))
                for _repeat in range(repeats)
            ]
        )
    return accuracy, drops


def _largest_gap(group_mean_abs: np.ndarray, overall_mean_abs: np.ndarray, names: list[str]) -> dict[str, Any] | None:
    total = overall_mean_abs.sum()
    eligible = np.flatnonzero(overall_mean_abs >= GAP_MIN_SHARE * total) if total > 0 else np.array([], int)
    if not len(eligible):
        return None
    ratios = group_mean_abs[eligible] / overall_mean_abs[eligible]
    # Symmetric in "weighs more" and "weighs less": a ratio of 2 and one of 0.5 are equally far from 1.
    distance = np.abs(np.log(np.maximum(ratios, 1e-12)))
    best = int(np.argmax(distance))
    return {"feature": names[eligible[best]], "ratio_to_overall": float(ratios[best])}


def explain_global(
    model: nn.Module,
    prep: PreprocessSpec,
    rows: pd.DataFrame,
    *,
    labels: np.ndarray,
    sensitive: list[str],
    min_group_size: int = 30,
    repeats: int = 10,
    seed: int,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Aggregated explanations of ``rows`` (held-out rows; their mean encoded input is the baseline).

    ``labels``: class indices per row (1 = the positive class, as ``encode_labels`` returns) or class names.
    ``sensitive``: columns of ``rows`` to break the attributions down by (each attribute on its own).
    Raises ExplanationError for fewer than ``min_group_size`` rows: the whole result is an aggregate over them.
    """
    require_binary(model, prep)
    rows = rows.reset_index(drop=True)
    n = len(rows)
    if n < max(min_group_size, 2):
        raise ExplanationError(
            f"Global explanations need at least {max(min_group_size, 2)} rows (small-cell rule); got {n}."
        )
    if repeats < 1:
        raise ExplanationError("Permutation importance needs at least one repeat.")
    missing = [name for name in sensitive if name not in rows.columns]
    if missing:
        raise ExplanationError(f"Sensitive attribute(s) not in the rows: {', '.join(missing)}")
    target = encoded_labels(labels, prep)
    if len(target) != n:
        raise ExplanationError(f"{len(target)} labels for {n} rows.")

    baseline = explanation_baseline(prep, rows)
    result = attributions(model, prep, rows, baseline=baseline)
    names = result.features
    absolute = np.abs(result.values)
    overall_mean_abs = absolute.mean(axis=0)
    overall_mean = result.values.mean(axis=0)

    inputs = transform(rows, prep).astype(np.float64)
    accuracy, drops = permutation_importance(
        explainable_copy(model), prep, inputs, target, repeats=repeats, seed=seed, threshold=threshold
    )
    features = []
    for j, name in enumerate(names):
        low, high = np.percentile(drops[name], [2.5, 97.5])
        features.append(
            {
                "feature": name,
                "mean_abs_attribution": float(overall_mean_abs[j]),
                "mean_attribution": float(overall_mean[j]),
                "permutation_importance": {
                    "metric": "accuracy",
                    "mean": float(drops[name].mean()),
                    "interval": [float(low), float(high)],
                    "repeats": repeats,
                },
            }
        )
    order = np.argsort(-overall_mean_abs, kind="stable")
    features = [features[j] for j in order]

    by_group = []
    for grouping in groupings(rows, list(sensitive), intersections=False):
        for code, label in enumerate(grouping.labels):
            members = grouping.codes == code
            size = int(members.sum())
            entry: dict[str, Any] = {"attribute": grouping.name, "group": label, "rows": size}
            if size < min_group_size:
                by_group.append({**entry, "too_small": True, "features": None, "largest_gap": None})
                continue
            group_mean_abs = absolute[members].mean(axis=0)
            by_group.append(
                {
                    **entry,
                    "too_small": False,
                    "features": [
                        {"feature": names[j], "mean_abs_attribution": float(group_mean_abs[j])} for j in order
                    ],
                    "largest_gap": _largest_gap(group_mean_abs, overall_mean_abs, names),
                }
            )

    positive = prep.classes[1]
    if result.method == "exact_linear_shapley":
        method_note = (
            "Exact interventional Shapley values of a linear model: w_j (x_j - baseline_j), summed over a "
            "feature's encoded columns."
        )
    else:
        ways = {
            "activation_segments": "exactly, segment by segment of the path on which the network's active units do "
            "not change",
            "gauss_legendre": "by Gauss-Legendre quadrature with up to "
            f"{result.max_panels * GAUSS_LEGENDRE_ORDER} nodes where needed",
        }
        how = " and ".join(ways[part] for part in (result.integration or "").split("+") if part in ways)
        method_note = (
            "Integrated Gradients along the straight path from the baseline to each row, summed over a feature's "
            f"encoded columns, integrated {how}; the attributions of every row add up to its log-odds minus the "
            f"baseline's to within {result.completeness_gap:.1e}."
        )
    notes = [
        f"Attributions are in log-odds of the positive class {positive!r}, relative to a baseline: the mean encoded "
        f"input of these {n} held-out rows (baseline log-odds {result.baseline_logit:.3f}).",
        method_note,
        f"Permutation importance: the drop in accuracy (threshold {threshold}; accuracy {accuracy:.4f} unshuffled) "
        f"when one feature's values are shuffled across the rows, all its encoded columns together; {repeats} "
        "independent shuffles, interval = 2.5th to 97.5th percentile of the drops. It shows how much the drop "
        "varies with the shuffle, not the uncertainty from which rows were held out.",
        f"Groups with fewer than {min_group_size} rows are listed with their size only (small-cell rule); only "
        "aggregates are kept, never one person's attributions.",
        "Largest gap: among features carrying at least "
        f"{GAP_MIN_SHARE:.0%} of the total mean |attribution|, the one whose mean |attribution| in the group is "
        "furthest (as a ratio) from its value over all rows.",
    ]
    return {
        "method": result.method,
        "rows": n,
        "baseline_logit": result.baseline_logit,
        "baseline": baseline.tolist(),
        "positive_class": positive,
        "accuracy": accuracy,
        "threshold": threshold,
        "completeness_gap": result.completeness_gap,
        "features": features,
        "by_group": by_group,
        "notes": notes,
    }
