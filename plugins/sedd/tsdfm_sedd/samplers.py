"""SEDD's samplers: the next-state kernel q(x_{tau+h} | x_tau) [B, L, S] of one step from tau to tau + h.

- ``euler``: q(y) = |d sigma / d tau|(tau) h Q[x, y] s_y for y != x, q(x) = 1 - sum (clamped, renormalised);
- ``tweedie``: tau-leaping with the Tweedie denoiser, q(y) ∝ [exp(-Ds Q) s]_y exp(Ds Q)[x, y],
  Ds = sigma(tau) - sigma(tau + h) = log(kappa(tau + h) / kappa(tau)) >= 0.

With either sampler the last step (tau + h = 1) is the Tweedie denoising step of the graph, so no noise
state is left. The kernel is drawn by the library's :class:`~lightning_tsdfm.jumps.JumpPolicy`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from tsdfm_sedd.graphs import Graph
from tsdfm_sedd.noise import LogLinearNoise

#: t + h at or above this is the last step, to tau = 1
LAST_STEP = 1.0 - 1e-6

Kernel = Callable[[Graph, LogLinearNoise, Tensor, Tensor, Tensor, Tensor], Tensor]


def euler_kernel(graph: Graph, noise: LogLinearNoise, x: Tensor, log_s: Tensor, t: Tensor, h: Tensor) -> Tensor:
    return graph.euler_kernel(x, log_s, noise.rate(t) * h.double())


def tweedie_kernel(graph: Graph, noise: LogLinearNoise, x: Tensor, log_s: Tensor, t: Tensor, h: Tensor) -> Tensor:
    return graph.tweedie_kernel(x, log_s, noise.kappa(t), noise.kappa((t.double() + h.double()).clamp_max(1.0)))


SAMPLERS: dict[str, Kernel] = {"tweedie": tweedie_kernel, "euler": euler_kernel}


def check_sampler(name: str) -> str:
    """``name`` if it is a registered sampler, else a ValueError naming the choices."""
    if name not in SAMPLERS:
        raise ValueError(f"Unknown sampler {name!r}: choose one of {', '.join(map(repr, SAMPLERS))}.")
    return name


def step_kernel(sampler: str, graph: Graph, noise: LogLinearNoise, x: Tensor, log_s: Tensor, t: Tensor,
                h: Tensor) -> Tensor:
    """q(x_{t+h} | x_t = x) [B, L, S] of ``sampler``; where t + h = 1, the graph's denoising step instead.

    x: [B, L] states, log_s: [B, L, V] log-scores at t, t and h: [B].
    """
    kernel = SAMPLERS[check_sampler(sampler)](graph, noise, x, log_s, t, h)
    last = (t + h) >= LAST_STEP
    if bool(last.any()):
        kernel = torch.where(last[:, None, None], graph.denoise_kernel(x, log_s, noise.kappa(t)), kernel)
    return kernel
