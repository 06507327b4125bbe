"""SEDD's log-linear noise in our time tau in [0, 1] (tau = 0: noise, tau = 1: data).

    kappa(tau) = eps + (1 - eps) tau        probability that a position still holds its data token
    sigma(tau) = -log kappa(tau)            total noise, sigma(1) = 0, sigma(0) = log(1/eps)
    |d sigma / d tau| = (1 - eps) / kappa   the rate weight of the score entropy and of the Euler step

so exp(-sigma) = kappa, and the SEDD forward process exp(sigma Q) is the mixture path with this kappa.
``LogLinearNoise`` is a library :class:`~lightning_tsdfm.paths.Scheduler` (``kappa``, ``d_kappa``):
``MixturePath(source, LogLinearNoise(eps))`` is SEDD's forward process, the module's ``path``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LogLinearNoise:
    """The Scheduler kappa(tau) = eps + (1 - eps) tau, with SEDD's sigma and rate; all methods take and return
    [B] tensors, computed in float64."""

    eps: float = 1e-3

    def __post_init__(self) -> None:
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"LogLinearNoise needs 0 < eps < 1, got {self.eps}.")

    def kappa(self, tau: Tensor) -> Tensor:
        return 1.0 - self.one_minus_kappa(tau)

    def one_minus_kappa(self, tau: Tensor) -> Tensor:
        """1 - kappa(tau) = (1 - eps)(1 - tau), without the cancellation of 1 - kappa near tau = 1."""
        return (1.0 - self.eps) * (1.0 - tau.double())

    def d_kappa(self, tau: Tensor) -> Tensor:
        return torch.full_like(tau, 1.0 - self.eps, dtype=torch.float64)

    def sigma(self, tau: Tensor) -> Tensor:
        """sigma = -log kappa = -log1p(-(1 - eps)(1 - tau))."""
        return -torch.log1p(-self.one_minus_kappa(tau))

    def rate(self, tau: Tensor) -> Tensor:
        """|d sigma / d tau| = (1 - eps) / kappa(tau)."""
        return (1.0 - self.eps) / self.kappa(tau)
