"""Adversarial examples on the model's (transformed) input: FGSM and PGD, L-infinity, untargeted.

Both follow the Adversarial Robustness Toolbox (ART 1.20) step for step, so the tests can hold them to it:
- the loss is the mean cross-entropy of the true labels; a binary model with ONE logit z is read as the two logits
  [0, z] (softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)], so the loss is the model's own logistic loss and the
  gradient sign is the one ART computes on the same wrapper);
- the gradient is zeroed where ``mask`` is 0 (one-hot columns: a category cannot move by 0.1), then only its sign
  is kept (sign(0) = 0, so masked and flat columns do not move);
- one step adds ``eps`` (FGSM) or ``step`` (PGD) times that sign, clips to ``bounds`` when given (ART's
  ``clip_values``), then projects the change from the original input back onto [-eps, eps].
``eps`` is in the units of the transformed input: standard deviations of each continuous feature.
"""

from __future__ import annotations

import torch
from torch import nn


def attack_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, with a one-logit binary output read as the two logits [0, z] (as wrapped for ART)."""
    if logits.shape[1] == 1:
        logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
    return nn.functional.cross_entropy(logits, labels.long())


def _signed_gradient(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    x = inputs.detach().clone().requires_grad_(True)
    # Only the input gradient is taken: the model's parameter gradients are left untouched.
    (grad,) = torch.autograd.grad(attack_loss(model(x), labels), x)
    grad = torch.where(mask == 0, torch.zeros_like(grad), grad)
    return grad.sign()


def _step(
    current: torch.Tensor,
    original: torch.Tensor,
    direction: torch.Tensor,
    size: float,
    eps: float,
    bounds: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    moved = current + size * direction
    if bounds is not None:
        moved = torch.maximum(torch.minimum(moved, bounds[1]), bounds[0])
    return original + torch.clamp(moved - original, -eps, eps)


def _check(eps: float, inputs: torch.Tensor, mask: torch.Tensor) -> None:
    if not eps >= 0:
        raise ValueError("eps must be a number >= 0")
    if inputs.dim() != 2:
        raise ValueError("inputs must be a (rows, columns) tensor of transformed features")
    if mask.shape[-1] != inputs.shape[1]:
        raise ValueError(f"mask has {mask.shape[-1]} columns, inputs {inputs.shape[1]}")


def fgsm(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    mask: torch.Tensor,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Fast gradient sign method: one step of size ``eps`` up the loss of the true ``labels``, where ``mask`` is 1.

    ``bounds`` (low, high), each broadcastable to a row, keeps the result in the range the preprocessing can
    produce (continuous inputs are clipped to the training 1st..99th percentiles before scaling).
    """
    _check(eps, inputs, mask)
    was_training = model.training
    model.eval()
    try:
        original = inputs.detach()
        direction = _signed_gradient(model, original, labels, mask)
        return _step(original, original, direction, eps, eps, bounds).detach()
    finally:
        model.train(was_training)


def pgd(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    step: float,
    iterations: int,
    mask: torch.Tensor,
    random_init: bool = False,
    generator: torch.Generator | None = None,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018): ``iterations`` signed steps of size ``step``, each projected
    back onto the L-infinity ball of radius ``eps`` around ``inputs``; the last iterate is returned (as ART does).

    ``random_init`` starts from a uniform point of the ball (on the masked columns), drawn from ``generator``.
    """
    _check(eps, inputs, mask)
    if iterations < 1 or not step > 0:
        raise ValueError("PGD needs iterations >= 1 and step > 0")
    was_training = model.training
    model.eval()
    try:
        original = inputs.detach()
        current = original
        if random_init:
            noise = torch.rand(original.shape, generator=generator, dtype=original.dtype) * (2 * eps) - eps
            current = original + noise.to(original.device) * (mask != 0).to(original.dtype)
            if bounds is not None:
                current = torch.maximum(torch.minimum(current, bounds[1]), bounds[0])
        for _ in range(iterations):
            direction = _signed_gradient(model, current, labels, mask)
            current = _step(current, original, direction, step, eps, bounds).detach()
        return current
    finally:
        model.train(was_training)
