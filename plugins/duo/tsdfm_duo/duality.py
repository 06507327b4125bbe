"""The diffusion duality: the argmax of a Gaussian diffusion over one-hot encodings is the uniform-state process.

A variance-preserving Gaussian diffusion at log-SNR -gamma over the one-hot encoding of a token x1 in R^V,

    w = a(gamma) onehot(x1) + s(gamma) eps,    a^2 = sigmoid(-gamma),  s^2 = sigmoid(gamma),  eps ~ N(0, I_V),

has argmax(w) = x1 iff eps_j < eps_x1 + m for every j != x1, with the margin m = a / s = exp(-gamma / 2), and is
otherwise uniform over the other V - 1 tokens (their noise is exchangeable). So argmax(w) is distributed as the
uniform-state marginal kappa delta(x1) + (1 - kappa) / V, with kappa = T(gamma):

    q(m) = E_z[Phi(z + m)^(V - 1)],        T(gamma) = (V q - 1) / (V - 1),
    dT / dgamma = -(V m / 2) E_z[Phi(z + m)^(V - 2) phi(z + m)],          z ~ N(0, 1).

T decreases from 1 (gamma -> -inf, no noise) to 0 (gamma -> +inf). Both expectations are computed by the trapezoid
rule on a fixed grid of z in float64, the powers through log Phi, so any vocabulary size is safe.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: the grid of z for the expectations over z ~ N(0, 1): phi(12) ~ 1e-32, so nothing beyond it counts
Z_GRID = torch.linspace(-12.0, 12.0, 4801, dtype=torch.float64)
_grids: dict[torch.device, Tensor] = {}
#: gamma_for_kappa searches gamma in [-GAMMA_LIMIT, GAMMA_LIMIT] (margins e^20 .. e^-20)
GAMMA_LIMIT = 40.0


def signal_and_noise(gamma: Tensor) -> tuple[Tensor, Tensor]:
    """(a, s) = (sqrt(sigmoid(-gamma)), sqrt(sigmoid(gamma))), the scales of onehot(x1) and of eps; a^2 + s^2 = 1."""
    gamma = torch.as_tensor(gamma, dtype=torch.float64)
    return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()


def margin(gamma: Tensor) -> Tensor:
    """m = a / s = exp(-gamma / 2): by how much the data coordinate's noise is lifted, in units of the noise."""
    return torch.exp(-torch.as_tensor(gamma, dtype=torch.float64) / 2)


def gaussian_latent(x1: Tensor, gamma: Tensor, noise: Tensor) -> Tensor:
    """w = a(gamma) onehot(x1) + s(gamma) noise [B, L, V]: x1 [B, L] token ids, gamma [B], noise [B, L, V]."""
    a, s = signal_and_noise(gamma)
    one_hot = torch.nn.functional.one_hot(x1, noise.shape[-1]).to(noise.dtype)
    return a.to(noise)[:, None, None] * one_hot + s.to(noise)[:, None, None] * noise


def _grid(device: torch.device) -> Tensor:
    """:data:`Z_GRID` on ``device``, copied there once."""
    if device not in _grids:
        _grids[device] = Z_GRID.to(device)
    return _grids[device]


def _expectation(log_integrand: Tensor) -> Tensor:
    """E_z[exp(log_integrand(z))] for log_integrand [..., Z] on :data:`Z_GRID` (the N(0, 1) density included here)."""
    z = _grid(log_integrand.device)
    log_phi = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    return torch.trapezoid((log_integrand + log_phi).exp(), z, dim=-1)


def argmax_accuracy(gamma: Tensor, vocab_size: int) -> Tensor:
    """q = P(argmax w = x1) = E_z[Phi(z + m)^(V - 1)], float64, the shape of ``gamma``."""
    m = margin(gamma)
    shifted = _grid(m.device) + m[..., None]
    return _expectation((vocab_size - 1) * torch.special.log_ndtr(shifted))


def argmax_kappa(gamma: Tensor, vocab_size: int) -> Tensor:
    """T(gamma) = (V q - 1) / (V - 1): the kappa of the uniform-state marginal that argmax(w) follows, float64."""
    _check_vocabulary(vocab_size)
    q = argmax_accuracy(gamma, vocab_size)
    return ((vocab_size * q - 1) / (vocab_size - 1)).clamp(0.0, 1.0)


def d_argmax_kappa(gamma: Tensor, vocab_size: int) -> Tensor:
    """dT / dgamma = -(V m / 2) E_z[Phi(z + m)^(V - 2) phi(z + m)] <= 0, float64."""
    _check_vocabulary(vocab_size)
    m = margin(gamma)
    shifted = _grid(m.device) + m[..., None]
    log_density = -0.5 * shifted**2 - 0.5 * math.log(2 * math.pi)
    expectation = _expectation((vocab_size - 2) * torch.special.log_ndtr(shifted) + log_density)
    return -(vocab_size * m / 2) * expectation


def gamma_for_kappa(kappa: float, vocab_size: int, iterations: int = 100) -> float:
    """The gamma with T(gamma) = kappa, by bisection (T is decreasing); kappa in (0, 1)."""
    if not 0.0 < kappa < 1.0:
        raise ValueError(f"kappa must lie strictly between 0 and 1 to have a finite gamma, got {kappa}.")
    low, high = -GAMMA_LIMIT, GAMMA_LIMIT  # T(low) > kappa > T(high)
    for _ in range(iterations):
        middle = (low + high) / 2
        if float(argmax_kappa(torch.tensor(middle, dtype=torch.float64), vocab_size)) > kappa:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _check_vocabulary(vocab_size: int) -> None:
    if vocab_size < 2:
        raise ValueError(f"The duality needs at least 2 tokens, got vocab_size={vocab_size}.")
