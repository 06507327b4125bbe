"""The deterministic trajectories of Discrete Consistency Distillation: for one draw (x1, eps), the token
argmax(a(gamma) onehot(x1) + s(gamma) eps) of every position at every log-SNR gamma.

Dividing by s > 0, argmax(w) = x1 iff eps_x1 + m(gamma) > M = max_{j != x1} eps_j (m = exp(-gamma / 2)), else the
runner-up j* = argmax_{j != x1} eps_j. Along the probability-flow (DDIM) path of the Gaussian diffusion through
(x1, eps), a position therefore holds j* while the signal is weak and switches to x1 once m(gamma) exceeds
M - eps_x1, never back: the path is fixed by the threshold M - eps_x1 and the runner-up. Both are drawn directly,
eps_x1 ~ N(0, 1), M by the inverse CDF of the maximum of V - 1 standard normals, M = Phi^{-1}(U^{1/(V-1)}), and j*
uniform over the other tokens, so no [B, L, V] noise is drawn (it is the same law: the argmax of exchangeable
normals is uniform and independent of their maximum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from tsdfm_duo.duality import margin


@dataclass(frozen=True)
class ArgmaxTrajectory:
    """Per position [B, L]: the data token ``x1``, the margin ``threshold`` = M - eps_x1 beyond which argmax(w) is x1,
    and the ``runner_up`` token it is before."""

    x1: Tensor
    threshold: Tensor
    runner_up: Tensor

    @classmethod
    def draw(cls, x1: Tensor, vocab_size: int, generator: Optional[torch.Generator] = None) -> "ArgmaxTrajectory":
        """The trajectory of x1 [B, L] under a fresh eps ~ N(0, I_V) per position, from three numbers per position."""
        if vocab_size < 2:
            raise ValueError(f"A trajectory needs at least 2 tokens, got vocab_size={vocab_size}.")
        shape, device = tuple(x1.shape), x1.device
        eps_x1 = torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
        u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64).clamp_min(1e-300)
        # Phi(M) = U^{1/(V-1)}: M = -Phi^{-1}(1 - U^{1/(V-1)}), with 1 - U^{1/(V-1)} = -expm1(log U / (V-1)) accurate
        maximum = -torch.special.ndtri(-torch.expm1(torch.log(u) / (vocab_size - 1)))
        other = torch.randint(0, vocab_size - 1, shape, generator=generator, device=device)
        runner_up = other + (other >= x1).long()  # uniform over the V - 1 tokens other than x1
        return cls(x1, maximum - eps_x1, runner_up)

    @classmethod
    def of_noise(cls, x1: Tensor, noise: Tensor) -> "ArgmaxTrajectory":
        """The trajectory through the given eps [B, L, V]."""
        eps_x1 = noise.gather(-1, x1[..., None]).squeeze(-1)
        others = noise.scatter(-1, x1[..., None], float("-inf"))
        maximum, runner_up = others.max(-1)
        return cls(x1, (maximum - eps_x1).double(), runner_up)

    def tokens(self, gamma: Tensor) -> Tensor:
        """argmax(w) at log-SNR -gamma [B] (one per sequence): x1 where m(gamma) > threshold, else the runner-up."""
        clean = margin(gamma).to(self.threshold.device)[:, None] > self.threshold
        return torch.where(clean, self.x1, self.runner_up)
