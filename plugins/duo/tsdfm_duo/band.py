"""The band of Gaussian log-SNRs on which DUO's curriculum and its distillation draw their times.

In the library's time u in [0, 1] (u = 0 noise, u = 1 data) the band [gamma_min, gamma_max] is walked linearly,

    gamma(u) = gamma_max - u (gamma_max - gamma_min),

so the tokens argmax(w) of the Gaussian latent at gamma(u) follow the uniform-state path with

    kappa(u) = T(gamma(u)),      d kappa / du = (gamma_max - gamma_min) (-dT / dgamma)(gamma(u)) >= 0

(:mod:`tsdfm_duo.duality`). A band is named by its log-SNRs or, by default, by the kappa it spans: the band of DUO's
OpenWebText curriculum, gamma in [-3.55, -1.85] for 50,257 tokens, spans kappa from about 0.05 to 0.95, and that of
its distillation, [-4, -1], from about 0.006 to 0.999; the same kappa range gives other gammas for other vocabularies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tsdfm_duo.duality import argmax_kappa, d_argmax_kappa, gamma_for_kappa, margin, signal_and_noise

#: the kappa range of DUO's curriculum band on OpenWebText
CURRICULUM_KAPPA = (0.05, 0.95)
#: the kappa range of DUO's distillation band on OpenWebText
DISTILLATION_KAPPA = (0.006, 0.999)


@dataclass(frozen=True)
class GaussianBand:
    """gamma(u) = gamma_max - u (gamma_max - gamma_min) over ``vocab_size`` tokens, gamma_min < gamma_max; every method
    takes library times u [B] and returns float64 [B]."""

    vocab_size: int
    gamma_min: float
    gamma_max: float

    def __post_init__(self) -> None:
        if not self.gamma_min < self.gamma_max:
            raise ValueError(f"A Gaussian band needs gamma_min < gamma_max (gamma_min is the cleaner end), got "
                             f"[{self.gamma_min}, {self.gamma_max}].")

    @classmethod
    def spanning(cls, vocab_size: int, gamma_min: float | None, gamma_max: float | None,
                 kappa_range: tuple[float, float]) -> "GaussianBand":
        """The band [gamma_min, gamma_max]; an end given as None is the gamma at which T reaches the matching end of
        ``kappa_range`` = (kappa at gamma_max, kappa at gamma_min)."""
        low, high = kappa_range
        return cls(vocab_size,
                   gamma_for_kappa(high, vocab_size) if gamma_min is None else float(gamma_min),
                   gamma_for_kappa(low, vocab_size) if gamma_max is None else float(gamma_max))

    def gamma(self, u: Tensor) -> Tensor:
        return self.gamma_max - u.double() * (self.gamma_max - self.gamma_min)

    def kappa(self, u: Tensor) -> Tensor:
        return argmax_kappa(self.gamma(u), self.vocab_size)

    def d_kappa(self, u: Tensor) -> Tensor:
        return -(self.gamma_max - self.gamma_min) * d_argmax_kappa(self.gamma(u), self.vocab_size)

    def margin(self, u: Tensor) -> Tensor:
        """m(gamma(u)) = exp(-gamma(u) / 2)."""
        return margin(self.gamma(u))

    def signal_and_noise(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """(a, s) of the Gaussian latent at gamma(u)."""
        return signal_and_noise(self.gamma(u))

    def kappa_range(self) -> tuple[float, float]:
        """(kappa at the noisy end, kappa at the clean end)."""
        ends = self.kappa(torch.tensor([0.0, 1.0]))
        return float(ends[0]), float(ends[1])
