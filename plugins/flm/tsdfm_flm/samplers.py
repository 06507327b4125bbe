"""The samplers of FLM and FMLM: steps z_tau -> z_{tau+h} on the uniform grid tau_i = i / N of the decoding-error
time, from z_0 ~ N(0, I) [B, L, V]; the last step returns the argmax of the denoiser, LongTensor [B, L].

- ``euler`` (FLM): D = softmax f(z, tau_i), z <- z + (gamma_{i+1} - gamma_i)(D - z) / (1 - gamma_i).
- ``flow_map`` (FMLM) with stochasticity g in [0, 1]: with sigma = 1 - gamma_{i+1}, sigma~ = sigma sqrt(1 - g^2) and
  gamma~ = 1 - sigma~, D = delta(z; tau_i, alpha(gamma~)) and

      z <- X_{gamma_i -> gamma~}(z) + (sigma~ - sigma) D + g sigma eps,   eps ~ N(0, I),

  which leaves data weight gamma_{i+1} on D and noise variance sigma~^2 + g^2 sigma^2 = sigma^2: g = 0 is the
  deterministic flow map, g = 1 jumps to the data end and renoises (a consistency-model step).

Only z_0 and the renoising are random, so a one-step sample is the argmax of delta(z_0; 0, 1) for any g.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor

from tsdfm_flm.flow_map import euler_step, flow_map
from tsdfm_flm.interpolant import OneHotGaussianPath, per_sequence

#: a denoiser's probabilities delta(z; tau, h) [B, L, V] (h = 0: the one-time denoiser D_tau)
Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]
Step = Callable[[Tensor, Tensor, Tensor, Optional[torch.Generator]], Tensor]


def is_last_step(tau: Tensor, h: Tensor) -> bool:
    """tau + h reaches the data end (tau = 1) for the whole batch: the step that decodes."""
    return bool(((tau + h) >= 1 - 1e-6).all())


def euler_sampling_step(denoiser: Denoiser, path: OneHotGaussianPath) -> Step:
    """FLM's Euler step on the tau grid; the last step is argmax D."""

    def step(z: Tensor, tau: Tensor, h: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        denoised = denoiser(z, tau, torch.zeros_like(tau))
        if is_last_step(tau, h):
            return denoised.argmax(-1)
        return euler_step(z, denoised, path.gamma(tau), path.gamma((tau + h).clamp_max(1.0)))

    return step


def flow_map_sampling_step(denoiser: Denoiser, path: OneHotGaussianPath, noise: float) -> Step:
    """FMLM's few-step sampler with stochasticity ``noise`` = g in [0, 1]; the last step is argmax delta(z; tau, 1)."""
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"The flow-map sampler's stochasticity g must lie in [0, 1], got {noise}.")

    def step(z: Tensor, tau: Tensor, h: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        if is_last_step(tau, h):
            return denoiser(z, tau, 1 - tau).argmax(-1)
        gamma_here, gamma_next = path.gamma(tau), path.gamma((tau + h).clamp_max(1.0))
        sigma = 1 - gamma_next
        sigma_jump = sigma * math.sqrt(1 - noise**2)
        gamma_jump = 1 - sigma_jump
        tau_jump = path.time.alpha(gamma_jump).to(tau.dtype)
        delta = denoiser(z, tau, tau_jump - tau)
        z = flow_map(z, delta, gamma_here, gamma_jump) + per_sequence(sigma_jump - sigma, z) * delta
        if noise > 0:
            eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z = z + noise * per_sequence(sigma, z) * eps
        return z

    return step
