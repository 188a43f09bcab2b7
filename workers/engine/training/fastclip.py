"""Per-sample gradient clipping for networks of Linear layers, without per-sample gradients.

For a Linear layer with input a_i (row i) and output gradient g_i, the per-sample weight gradient is the outer product
g_i a_i^T, whose norm is ||g_i|| * ||a_i|| (Goodfellow 2015); the bias gradient is g_i. So each row's total gradient
norm is cheap, and the clipped sum over the batch is ONE matrix product per layer:
    sum_i c_i g_i a_i^T = (c * G)^T A,   with c_i = min(1, C / (norm_i + 1e-6))  (Opacus's flat clipping rule).
Output gradients come from ``torch.autograd.grad`` with respect to the layer outputs, so autograd never computes the
unclipped weight gradients at all.
"""

from __future__ import annotations

import torch
from torch import nn


class UnsupportedLayer(ValueError):
    """The model has parameters outside nn.Linear layers; use Opacus's general (slower) path instead."""


class FastClipper:
    def __init__(self, model: nn.Module) -> None:
        self.layers = [module for module in model.modules() if isinstance(module, nn.Linear)]
        linear_params = {id(p) for layer in self.layers for p in layer.parameters()}
        others = [name for name, p in model.named_parameters() if id(p) not in linear_params and p.requires_grad]
        if others:
            raise UnsupportedLayer(f"Fast clipping supports Linear layers only; these parameters are not: {others}")
        self._inputs: list[torch.Tensor] = []
        self._outputs: list[torch.Tensor] = []
        self._handles = [layer.register_forward_hook(self._capture) for layer in self.layers]

    def _capture(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if inputs[0].dim() != 2:
            raise UnsupportedLayer("Fast clipping needs 2-D (batch, features) inputs to Linear layers.")
        self._inputs.append(inputs[0].detach())
        self._outputs.append(output)

    def reset(self) -> None:
        self._inputs.clear()
        self._outputs.clear()

    def clipped_sum(
        self, per_sample_loss: torch.Tensor, max_grad_norm: float
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Set each parameter's .grad to the SUM over rows of per-row gradients clipped to ``max_grad_norm``.

        Returns the gradient tensors (also written to .grad) and the per-row norms before clipping.
        """
        outputs, inputs = self._outputs, self._inputs
        grads_out = torch.autograd.grad(per_sample_loss.sum(), outputs)
        sq_norms = torch.zeros(per_sample_loss.shape[0], device=per_sample_loss.device, dtype=per_sample_loss.dtype)
        for layer, a, g in zip(self.layers, inputs, grads_out, strict=True):
            g_sq = g.pow(2).sum(dim=1)
            sq_norms += g_sq * a.pow(2).sum(dim=1)
            if layer.bias is not None:
                sq_norms += g_sq
        norms = sq_norms.sqrt()
        factors = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        written = []
        for layer, a, g in zip(self.layers, inputs, grads_out, strict=True):
            scaled = g * factors[:, None]
            layer.weight.grad = scaled.t().mm(a)
            written.append(layer.weight.grad)
            if layer.bias is not None:
                layer.bias.grad = scaled.sum(dim=0)
                written.append(layer.bias.grad)
        self.reset()
        return written, norms

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
