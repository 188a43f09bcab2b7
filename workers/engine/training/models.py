"""Tabular models: logistic regression and a small MLP, built only from Linear layers and parameter-free
activations, so Attest's per-sample clipping applies exactly."""

from __future__ import annotations

import torch
from torch import nn

MODEL_KINDS = ("logistic_regression", "mlp")


def build_model(kind: str, input_width: int, classes: int, hidden: tuple[int, ...] = (64, 32)) -> nn.Module:
    outputs = 1 if classes == 2 else classes
    if kind == "logistic_regression":
        return nn.Sequential(nn.Linear(input_width, outputs))
    if kind == "mlp":
        layers: list[nn.Module] = []
        width = input_width
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, outputs))
        return nn.Sequential(*layers)
    raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def loss_per_sample(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """One loss value per row (binary: logistic loss on one logit; multiclass: cross-entropy)."""
    if logits.shape[1] == 1:
        return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], targets.float(), reduction="none")
    return nn.functional.cross_entropy(logits, targets, reduction="none")


def predict_proba(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(inputs)
        if logits.shape[1] == 1:
            positive = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - positive, positive], dim=1)
        return torch.softmax(logits, dim=1)
