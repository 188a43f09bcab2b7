"""The randomness DP-SGD's guarantee rests on: Poisson sampling masks and Gaussian noise from a CSPRNG.

If the noise followed from anything stored or shown (the run's seed is in the manifest and on pages), anyone knowing
the other rows could retrain, subtract the noise and read off the remaining row: the (epsilon, delta) claim would be
void. So every run keys a ChaCha20 keystream from ``os.urandom`` and never records the key. The user's seed fixes only
the split and the initialisation.

Gaussians come from Box-Muller on 53-bit uniforms, in float64. Against Mironov-style floating-point attacks (the low
bits of one naive sample reveal it; arXiv 2107.10138, 2112.05307) each noise value is the sum of four such samples
divided by 2, as Opacus's ``secure_mode`` does (its ``_generate_noise``): same variance, attack cost 2^159.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

SOURCE = "csprng-chacha20"
# Re-key well before ChaCha20's 32-bit block counter (256 GiB) could wrap.
REKEY_BYTES = 1 << 34
_TWO_POW_53 = float(1 << 53)
_SUMMED = 4  # Gaussians summed per noise value (Opacus secure_mode: 2n with n = 2)


class SecureRandom:
    """Uniforms, Poisson masks and Gaussian noise from a ChaCha20 keystream keyed per instance from the OS."""

    source = SOURCE

    def __init__(self) -> None:
        self._rekey()

    def _rekey(self) -> None:
        # A 256-bit key and a random 128-bit counter+nonce; neither is kept anywhere else.
        self._encryptor = Cipher(algorithms.ChaCha20(os.urandom(32), os.urandom(16)), mode=None).encryptor()
        self._used = 0

    def _words(self, count: int) -> np.ndarray:
        size = 8 * count
        if self._used + size > REKEY_BYTES:
            self._rekey()
        self._used += size
        # Encrypting zeros yields the keystream itself.
        return np.frombuffer(self._encryptor.update(bytes(size)), dtype=np.uint64)

    def uniform(self, count: int) -> torch.Tensor:
        """``count`` float64 uniforms on [0, 1), multiples of 2^-53."""
        return torch.from_numpy((self._words(count) >> np.uint64(11)).astype(np.float64) / _TWO_POW_53)

    def poisson_mask(self, n: int, rate: float) -> torch.Tensor:
        """Each of ``n`` rows joins independently with probability ``rate``."""
        return self.uniform(n) < rate

    def standard_normal(self, count: int) -> torch.Tensor:
        """``count`` float64 standard normals (Box-Muller)."""
        pairs = (count + 1) // 2
        u = self.uniform(2 * pairs)
        radius = torch.sqrt(-2.0 * torch.log1p(-u[:pairs]))  # 1 - u is in (0, 1]: no log(0)
        angle = (2.0 * math.pi) * u[pairs:]
        return torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])[:count]

    def gaussian(self, count: int, std: float) -> torch.Tensor:
        """``count`` N(0, std^2) values, each the sum of four Gaussians over 2 (the floating-point defence)."""
        if std == 0:
            return torch.zeros(count, dtype=torch.float64)
        draws = self.standard_normal(_SUMMED * count).view(_SUMMED, count)
        return draws.sum(dim=0) * (std / math.sqrt(_SUMMED))

    def noise_like(self, parameters: list[torch.Tensor], std: float) -> list[torch.Tensor]:
        """One noise tensor per parameter, drawn in one batch, in each parameter's dtype and device."""
        total = sum(p.numel() for p in parameters)
        flat = self.gaussian(total, std)
        out, start = [], 0
        for p in parameters:
            out.append(flat[start : start + p.numel()].view(p.shape).to(device=p.device, dtype=p.dtype))
            start += p.numel()
        return out
