"""The model as the explainers see it: one logit (binary models only), evaluated in float64 so that completeness
checks measure the estimator, not float32 rounding."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from workers.engine.training.data import PreprocessSpec

# Rows per forward pass when only predictions are needed: bounds memory for any number of rows.
PREDICT_CHUNK = 65_536


class ExplanationError(ValueError):
    """The model or the rows cannot be explained as asked (a multiclass model, too few rows, a bad baseline)."""


def explainable_copy(model: nn.Module) -> nn.Module:
    """A float64, eval-mode copy without parameter gradients; the caller's model is never touched."""
    double = copy.deepcopy(model).double().eval()
    for parameter in double.parameters():
        parameter.requires_grad_(False)
    return double


def output_width(model: nn.Module, input_width: int) -> int:
    with torch.no_grad():
        return int(model(torch.zeros(1, input_width, dtype=next(model.parameters()).dtype)).shape[1])


def require_binary(model: nn.Module, prep: PreprocessSpec) -> None:
    if len(prep.classes) != 2 or output_width(model, prep.input_width) != 1:
        raise ExplanationError(
            "Explanations are on the log-odds of the positive class, so they need a binary model with one logit; "
            f"this model has {len(prep.classes)} classes."
        )


def logits(model: nn.Module, inputs: np.ndarray) -> np.ndarray:
    """The logit of each row (float64 numpy), in chunks."""
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float64
    out = np.empty(len(inputs), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(inputs), PREDICT_CHUNK):
            chunk = torch.as_tensor(inputs[start : start + PREDICT_CHUNK], dtype=dtype)
            out[start : start + len(chunk)] = model(chunk)[:, 0].double().numpy()
    return out


def linear_parameters(model: nn.Module) -> tuple[np.ndarray, float] | None:
    """(weights, bias) when the model is a single Linear layer with one output (logistic regression), else None."""
    layers = [m for m in model.modules() if not isinstance(m, (nn.Sequential, nn.Identity))]
    if len(layers) != 1 or not isinstance(layers[0], nn.Linear) or layers[0].out_features != 1:
        return None
    layer = layers[0]
    weights = layer.weight.detach().double().numpy()[0].copy()
    bias = float(layer.bias.detach().double()[0]) if layer.bias is not None else 0.0
    return weights, bias


def piecewise_linear_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers of a Sequential that starts with a Linear layer and holds only Linear, ReLU and Identity layers (a
    piecewise-linear network), else None."""
    if not isinstance(model, nn.Sequential):
        return None
    layers = list(model.children())
    if not layers or not isinstance(layers[0], nn.Linear):
        return None
    if any(not isinstance(layer, (nn.Linear, nn.ReLU, nn.Identity)) for layer in layers):
        return None
    return layers


def split_first_linear(model: nn.Module) -> tuple[nn.Linear, nn.Module] | None:
    """(first Linear layer, the rest) of a Sequential that starts with a Linear layer, else None.

    Work that moves inputs along a line or changes a few input columns can then run in the first layer's (usually
    narrower) output space: Linear(x + d) = Linear(x) + W d."""
    if not isinstance(model, nn.Sequential) or not len(model) or not isinstance(model[0], nn.Linear):
        return None
    return model[0], nn.Sequential(*list(model.children())[1:])


def logit_threshold(threshold: float) -> float:
    """The logit at which the positive-class probability equals ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise ExplanationError(f"The decision threshold must be strictly between 0 and 1, not {threshold}.")
    return math.log(threshold / (1.0 - threshold))


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))
