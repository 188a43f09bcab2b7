"""Per-feature attributions of the model's logit (log-odds of the positive class) relative to a baseline input.

Both estimators work on the encoded inputs and then sum each original feature's columns (a categorical feature's
one-hot columns become one number), so the numbers are about what a person recognises: "occupation", not
"occupation=Sales".

- Logistic regression: exact interventional Shapley values. For f(x) = w.x + b and a baseline x', feature j's
  Shapley value is w_j (x_j - x'_j) whatever the coalition, so no sampling is needed; this is what shap's exact
  linear explainer returns with the same background mean.
- Any other differentiable network: Integrated Gradients on the logit along the straight path from the baseline.
  For a network of Linear and ReLU layers the logit is linear between the points where a hidden unit changes sign
  along the path, so the gradient is constant on each such segment. The segments are found layer by layer (a unit's
  pre-activation is linear between the breakpoints of the layers before it, so it crosses zero at most once per
  segment), and one gradient per segment, weighted by the segment's length, gives the integral exactly. Other
  networks use composite Gauss-Legendre quadrature, doubling the panels for the rows that miss completeness.

Either way completeness (attributions sum to f(x) - f(baseline)) is checked per row; a row that misses the
tolerance is recomputed with finer quadrature, and the largest remaining gap is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from workers.engine.explain._model import (
    ExplanationError,
    explainable_copy,
    linear_parameters,
    logits,
    piecewise_linear_layers,
    require_binary,
)
from workers.engine.training.data import PreprocessSpec, transform

COMPLETENESS_TOLERANCE = 1e-4
GAUSS_LEGENDRE_ORDER = 8
MAX_PANELS = 1024
# Bound on path points held at once (rows x points per row); about 100 MB at 100 input columns in float64.
POINTS_PER_CHUNK = 131_072
# A row with more activation-pattern segments than this falls back to quadrature (a pathological network).
MAX_SEGMENTS = 4096
# Bound on the pre-activation values held at once while finding segments (rows x breakpoints x hidden units);
# a batch above it is split in halves. About 270 MB in float64.
SEGMENT_VALUES_PER_BATCH = 1 << 25
# Rows per batch to start with: segment counts are not known in advance (often 50-150 per row on Adult MLPs).
SEGMENT_BATCH_ROWS = 1024


class _BatchTooLarge(Exception):
    """The batch's breakpoints x hidden units exceed SEGMENT_VALUES_PER_BATCH: split the rows."""


@dataclass
class Attributions:
    """Per-row, per-feature attributions with what is needed to check them."""

    values: np.ndarray  # rows x original features, log-odds
    features: list[str]
    logits: np.ndarray  # f(x) per row
    baseline_logit: float  # f(baseline)
    method: str  # "exact_linear_shapley" | "integrated_gradients"
    completeness_gap: float  # the largest |sum of a row's attributions - (f(x) - f(baseline))|
    integration: str | None = None  # "activation_segments" | "gauss_legendre" | "activation_segments+gauss_legendre"
    max_panels: int = 0  # the finest quadrature used, in panels of GAUSS_LEGENDRE_ORDER nodes (0: none)


def feature_columns(prep: PreprocessSpec) -> list[tuple[str, slice]]:
    """Each original feature and its encoded columns, in the order ``transform`` writes them."""
    out = []
    start = 0
    for name in prep.feature_order:
        # A categorical feature has one column per known category plus one for unknown values.
        width = 1 if name in prep.numeric else len(prep.categorical[name]) + 1
        out.append((name, slice(start, start + width)))
        start += width
    return out


def sum_per_feature(column_values: np.ndarray, prep: PreprocessSpec) -> np.ndarray:
    """Column-level attributions (rows x encoded columns) summed into rows x original features."""
    starts = [cols.start for _name, cols in feature_columns(prep)]
    if not starts:
        return np.zeros((len(column_values), 0))
    return np.add.reduceat(column_values, starts, axis=1)


def explanation_baseline(prep: PreprocessSpec, rows: pd.DataFrame) -> np.ndarray:
    """The mean encoded input of ``rows`` (float64; ``.tolist()`` stores it as JSON for scoring to reuse)."""
    if len(rows) == 0:
        raise ExplanationError("A baseline needs at least one row.")
    return transform(rows, prep).astype(np.float64).mean(axis=0)


def _checked_baseline(prep: PreprocessSpec, baseline: np.ndarray | list[float]) -> np.ndarray:
    vector = np.asarray(baseline, dtype=np.float64).reshape(-1)
    if vector.shape != (prep.input_width,) or not np.isfinite(vector).all():
        raise ExplanationError(
            f"The baseline must be {prep.input_width} finite numbers (the model's encoded input width), "
            f"not {vector.shape[0]}."
        )
    return vector


def _segment_integrated_gradients(
    layers: list[nn.Module], inputs: torch.Tensor, baseline: torch.Tensor
) -> torch.Tensor | None:
    """Exact IG for a Linear/ReLU network; None when a row has more than MAX_SEGMENTS segments.

    The path is followed in the first layer's output space, where it is also a straight line (z(a) = z0 + a W delta):
    no input-width points are built, and the gradient with respect to the input is the one with respect to z times W.
    """
    first, rest = layers[0], nn.Sequential(*layers[1:])
    assert isinstance(first, nn.Linear)
    delta = inputs - baseline
    with torch.no_grad():
        start = first(baseline)
        direction = delta @ first.weight.T
    rows = len(inputs)
    alphas = torch.tensor([0.0, 1.0], dtype=inputs.dtype).repeat(rows, 1)
    for position, layer in enumerate(rest):
        if not isinstance(layer, nn.ReLU):
            continue
        if rows > 1 and rows * alphas.shape[1] * max(start.shape[0], _widest(rest)) > SEGMENT_VALUES_PER_BATCH:
            raise _BatchTooLarge
        pre_activation = start + alphas[..., None] * direction[:, None, :]
        with torch.no_grad():
            for earlier in list(rest)[:position]:
                pre_activation = earlier(pre_activation)
        left, right = pre_activation[:, :-1], pre_activation[:, 1:]
        crosses = (left * right) < 0
        share = torch.where(crosses, left / torch.where(crosses, left - right, 1.0), 0.0)
        span = (alphas[:, 1:] - alphas[:, :-1])[..., None]
        # Slots without a crossing get 1.0, the path's end: a zero-length segment that adds nothing.
        crossings = torch.where(crosses, alphas[:, :-1, None] + span * share, 1.0).reshape(rows, -1)
        alphas = torch.cat([alphas, crossings], dim=1).sort(dim=1).values
        keep = int((alphas < 1.0).sum(dim=1).max()) + 1
        alphas = alphas[:, :keep]
        if keep - 1 > MAX_SEGMENTS:
            return None
    lengths = alphas[:, 1:] - alphas[:, :-1]
    midpoints = (alphas[:, 1:] + alphas[:, :-1]) / 2
    hidden = (start + midpoints[..., None] * direction[:, None, :]).requires_grad_(True)
    with torch.enable_grad():
        (gradients,) = torch.autograd.grad(rest(hidden).sum(), hidden)
    # The gradient is constant on each segment, so length-weighted midpoint gradients integrate it exactly.
    return delta * ((lengths[..., None] * gradients).sum(dim=1) @ first.weight)


def _widest(layers: nn.Module) -> int:
    return max((layer.out_features for layer in layers.modules() if isinstance(layer, nn.Linear)), default=1)


def _segments_in_batches(
    layers: list[nn.Module], inputs: torch.Tensor, baseline: torch.Tensor
) -> list[tuple[int, int, torch.Tensor | None]]:
    """(start, stop, attributions or None) over all rows, halving a batch whose segments do not fit in memory."""
    out = []
    pending = [
        (start, min(start + SEGMENT_BATCH_ROWS, len(inputs))) for start in range(0, len(inputs), SEGMENT_BATCH_ROWS)
    ]
    while pending:
        start, stop = pending.pop(0)
        try:
            out.append((start, stop, _segment_integrated_gradients(layers, inputs[start:stop], baseline)))
        except _BatchTooLarge:
            middle = (start + stop) // 2
            pending[:0] = [(start, middle), (middle, stop)]
    return out


def _gauss_legendre(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(GAUSS_LEGENDRE_ORDER)
    starts = np.arange(panels) / panels
    all_nodes = (starts[:, None] + (nodes[None, :] + 1) / (2 * panels)).ravel()
    all_weights = np.tile(weights / (2 * panels), panels)
    return all_nodes, all_weights


def _quadrature_integrated_gradients(
    model: nn.Module, inputs: torch.Tensor, baseline: torch.Tensor, panels: int
) -> torch.Tensor:
    nodes, weights = (torch.as_tensor(a, dtype=inputs.dtype) for a in _gauss_legendre(panels))
    rows, width = inputs.shape
    delta = inputs - baseline
    per_chunk = max(1, POINTS_PER_CHUNK // len(nodes))
    out = torch.empty_like(inputs)
    for start in range(0, rows, per_chunk):
        part = delta[start : start + per_chunk]
        points = (baseline + nodes[None, :, None] * part[:, None, :]).requires_grad_(True)
        with torch.enable_grad():
            (gradients,) = torch.autograd.grad(model(points.reshape(-1, width)).sum(), points)
        out[start : start + per_chunk] = part * (weights[None, :, None] * gradients).sum(dim=1)
    return out


def integrated_gradients(
    model: nn.Module,
    inputs: np.ndarray,
    baseline: np.ndarray,
    *,
    method: str = "auto",
    tolerance: float = COMPLETENESS_TOLERANCE,
) -> tuple[np.ndarray, dict[str, Any]]:
    """IG of the logit per encoded column (rows x columns, float64) and how it was computed.

    ``method``: "auto" (activation segments for Linear/ReLU networks, else quadrature), "segments" or "quadrature".
    Rows whose completeness gap exceeds ``tolerance`` are recomputed with twice the quadrature panels, up to
    MAX_PANELS; the info says which integration ran, the finest quadrature and the largest remaining gap.
    """
    if method not in ("auto", "segments", "quadrature"):
        raise ValueError(f"unknown integration method {method!r}")
    double = explainable_copy(model)
    x = np.asarray(inputs, dtype=np.float64)
    origin = np.asarray(baseline, dtype=np.float64)
    values, info, _row_logits, _baseline_logit = _integrated_gradients(double, x, origin, method, tolerance)
    return values, info


def _integrated_gradients(
    double: nn.Module, inputs: np.ndarray, baseline: np.ndarray, method: str, tolerance: float
) -> tuple[np.ndarray, dict[str, Any], np.ndarray, float]:
    """IG with a float64 model: (attributions per column, info, f(x), f(baseline))."""
    x = torch.as_tensor(inputs)
    origin = torch.as_tensor(baseline)
    row_logits = logits(double, inputs)
    baseline_logit = float(logits(double, baseline[None, :])[0])
    target = row_logits - baseline_logit
    per_column = np.zeros(x.shape, dtype=np.float64)
    pending = np.ones(len(x), dtype=bool)
    used: list[str] = []
    layers = piecewise_linear_layers(double)
    if method == "segments" and layers is None:
        raise ExplanationError("Exact segment integration needs a network of Linear and ReLU layers only.")
    if method in ("auto", "segments") and layers is not None:
        used.append("activation_segments")
        for start, stop, exact in _segments_in_batches(layers, x, origin):
            if exact is not None:
                per_column[start:stop] = exact.numpy()
                pending[start:stop] = False
    gaps = np.abs(per_column.sum(axis=1) - target)
    pending |= gaps > tolerance
    panels = 0
    if pending.any():
        used.append("gauss_legendre")
        panels = 1
        while True:
            index = np.flatnonzero(pending)
            estimate = _quadrature_integrated_gradients(double, x[index], origin, panels).numpy()
            per_column[index] = estimate
            gaps[index] = np.abs(estimate.sum(axis=1) - target[index])
            pending[index] = gaps[index] > tolerance
            if not pending.any() or panels >= MAX_PANELS:
                break
            panels *= 2
    info = {
        "integration": "+".join(used),
        "max_panels": panels,
        "completeness_gap": float(gaps.max()) if len(gaps) else 0.0,
    }
    return per_column, info, row_logits, baseline_logit


def attributions(
    model: nn.Module, prep: PreprocessSpec, rows: pd.DataFrame, *, baseline: np.ndarray | list[float]
) -> Attributions:
    """Per-feature attributions of ``rows`` with the method, the logits and the completeness gap."""
    require_binary(model, prep)
    origin = _checked_baseline(prep, baseline)
    inputs = transform(rows, prep).astype(np.float64)
    names = [name for name, _cols in feature_columns(prep)]
    linear = linear_parameters(model)
    if linear is not None:
        weights, bias = linear
        per_column = (inputs - origin) * weights
        row_logits = inputs @ weights + bias
        baseline_logit = float(origin @ weights + bias)
        values = sum_per_feature(per_column, prep)
        gap = float(np.abs(values.sum(axis=1) - (row_logits - baseline_logit)).max()) if len(rows) else 0.0
        return Attributions(values, names, row_logits, baseline_logit, "exact_linear_shapley", gap)
    per_column, info, row_logits, baseline_logit = _integrated_gradients(
        explainable_copy(model), inputs, origin, "auto", COMPLETENESS_TOLERANCE
    )
    return Attributions(
        values=sum_per_feature(per_column, prep),
        features=names,
        logits=row_logits,
        baseline_logit=baseline_logit,
        method="integrated_gradients",
        completeness_gap=info["completeness_gap"],
        integration=info["integration"],
        max_panels=info["max_panels"],
    )
