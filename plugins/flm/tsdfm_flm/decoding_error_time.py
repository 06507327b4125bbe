"""FLM's time reparameterisation tau = alpha(gamma): how far decoding by argmax has got at interpolation gamma.

For x_gamma = (1 - gamma) eps + gamma onehot(k) with eps ~ N(0, I_V), the argmax is k iff
eps_j < eps_k + m for every j != k, m = gamma / (1 - gamma). With z = eps_k ~ N(0, 1) the argmax accuracy is

    q(gamma) = E_z[ Phi(z + m)^(V - 1) ],

q(0) = 1/V (chance), q(1) = 1, and the rescaled accuracy

    alpha(gamma) = V / (V - 1) * (q(gamma) - 1 / V)  in [0, 1]

is the time the network sees: tau = alpha(gamma), uniform in "decoding progress" rather than in gamma (whose
useful band is narrow for a large V). q is computed by Gauss-Hermite quadrature,
E f(z) = sum_i w_i / sqrt(pi) f(sqrt(2) x_i), in float64 with log Phi for the power. A float64 table of
alpha on a uniform gamma grid gives alpha by linear interpolation and gamma = alpha^{-1}(tau) by
interpolation of the same table with its axes swapped, so the two maps are inverses of each other to
rounding (a piecewise-linear monotone map inverts exactly).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

#: Gauss-Hermite nodes of the expectation over z
QUADRATURE_NODES = 100
#: points of the uniform gamma grid of the lookup table
GRID_POINTS = 10_001
#: slope added to alpha, (gamma - 1) * TIE_BREAK, so the table stays strictly increasing where alpha saturates at 1
TIE_BREAK = 1e-10


def argmax_accuracy(gamma: Tensor, vocab_size: int, nodes: int = QUADRATURE_NODES) -> Tensor:
    """q(gamma) = E_z[Phi(z + gamma / (1 - gamma))^(V - 1)], float64, the shape of ``gamma``."""
    x, w = np.polynomial.hermite.hermgauss(nodes)
    z = torch.as_tensor(np.sqrt(2.0) * x, dtype=torch.float64)
    weights = torch.as_tensor(w / np.sqrt(np.pi), dtype=torch.float64)
    gamma = torch.as_tensor(gamma, dtype=torch.float64)
    margin = gamma / (1 - gamma).clamp_min(1e-12)
    log_phi = torch.special.log_ndtr(z + margin[..., None])
    return (weights * torch.exp((vocab_size - 1) * log_phi)).sum(-1)


def alpha_exact(gamma: Tensor, vocab_size: int, nodes: int = QUADRATURE_NODES) -> Tensor:
    """alpha(gamma) = V / (V - 1) (q(gamma) - 1 / V), by quadrature (no table), float64."""
    q = argmax_accuracy(gamma, vocab_size, nodes)
    return vocab_size / (vocab_size - 1) * (q - 1.0 / vocab_size)


def interpolate(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear f(x) through (xp, fp), xp strictly increasing; x clamped to [xp[0], xp[-1]]."""
    x = x.clamp(xp[0], xp[-1])
    right = torch.searchsorted(xp, x, right=True).clamp(1, xp.numel() - 1)
    x0, x1, y0, y1 = xp[right - 1], xp[right], fp[right - 1], fp[right]
    return y0 + (x - x0) / (x1 - x0) * (y1 - y0)


class DecodingErrorTime:
    """tau = alpha(gamma) and its inverse gamma(tau) for a vocabulary of ``vocab_size`` tokens, from a float64 table.

    ``alpha(gamma)`` and ``gamma(tau)`` take tensors of any shape and device and return float64 on that device;
    both pin the endpoints: alpha(0) = 0, alpha(1) = 1 (the quadrature alone gives alpha(0) of about 5e-8).
    """

    def __init__(self, vocab_size: int, grid_points: int = GRID_POINTS, nodes: int = QUADRATURE_NODES) -> None:
        if vocab_size < 2:
            raise ValueError(f"The decoding-error time needs at least 2 tokens, got vocab_size={vocab_size}.")
        self.vocab_size = vocab_size
        gamma = torch.linspace(0.0, 1.0, grid_points, dtype=torch.float64)
        alpha = (alpha_exact(gamma, vocab_size, nodes) + (gamma - 1) * TIE_BREAK).clamp(0.0, 1.0)
        alpha[0], alpha[-1] = 0.0, 1.0
        alpha = torch.cummax(alpha, 0).values
        increasing = torch.cat([torch.tensor([True]), alpha[1:] > alpha[:-1]])  # first of any run of equal values
        self._gamma_grid, self._alpha_grid = gamma[increasing], alpha[increasing]
        self._on_device: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def _tables(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._on_device:
            self._on_device[device] = (self._gamma_grid.to(device), self._alpha_grid.to(device))
        return self._on_device[device]

    def alpha(self, gamma: Tensor) -> Tensor:
        """tau = alpha(gamma), float64."""
        gamma_grid, alpha_grid = self._tables(gamma.device)
        return interpolate(gamma.double(), gamma_grid, alpha_grid)

    def gamma(self, tau: Tensor) -> Tensor:
        """gamma = alpha^{-1}(tau), float64."""
        gamma_grid, alpha_grid = self._tables(tau.device)
        return interpolate(tau.double(), alpha_grid, gamma_grid)


@lru_cache(maxsize=8)
def decoding_error_time(vocab_size: int) -> DecodingErrorTime:
    """The table of a vocabulary size, built once per process (about 10^6 quadrature terms)."""
    return DecodingErrorTime(vocab_size)
