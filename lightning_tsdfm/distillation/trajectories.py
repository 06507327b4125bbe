"""Trajectory teachers: the distillation target for one student step of size h, built from a short
trajectory of half steps. Every midpoint is a draw of the module's :class:`JumpPolicy` (the seam that
trajectory shaping replaces).

    Heun:  k1 = p(x_t, t, h/2);  m = jump(x_t, k1, t, h/2);  k2 = p(m, t + h/2, h/2);  target = (k1 + k2) / 2
    RK4:   k1 = p(x_t, t, h/2);  m1 = jump(x_t, k1, t, h/2);  k2 = p(m1, t + h/2, h/2)
           m2 = jump(x_t, k2, t, h/2);  k3 = p(m2, t + h/2, h/2);  m3 = jump(x_t, k3, t, h);  k4 = p(m3, t + h, h/2)
           target = (k1 + 2 k2 + 2 k3 + k4) / 6
(probability space; p is the kernel p(x1 | x, t, step)).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.paths import MixturePath

Kernel = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x [B, L], t [B], h [B]) -> probs [B, L, V]


def heun_target(kernel: Kernel, jump: JumpPolicy, path: MixturePath, x_t: Tensor, t: Tensor, h: Tensor,
                generator: Optional[torch.Generator] = None) -> Tensor:
    half = h / 2
    k1 = kernel(x_t, t, half)
    midpoint = jump(x_t, k1, t, half, path, generator)
    k2 = kernel(midpoint, t + half, half)
    return (k1 + k2) / 2


def rk4_target(kernel: Kernel, jump: JumpPolicy, path: MixturePath, x_t: Tensor, t: Tensor, h: Tensor,
               generator: Optional[torch.Generator] = None) -> Tensor:
    half = h / 2
    k1 = kernel(x_t, t, half)
    k2 = kernel(jump(x_t, k1, t, half, path, generator), t + half, half)
    k3 = kernel(jump(x_t, k2, t, half, path, generator), t + half, half)
    k4 = kernel(jump(x_t, k3, t, h, path, generator), t + h, half)
    return (k1 + 2 * k2 + 2 * k3 + k4) / 6


TRAJECTORIES = {"heun": heun_target, "rk4": rk4_target}
