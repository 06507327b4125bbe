"""Dyadic step sizes and grid times for shortcut distillation.

Level j has step h = 2^-j, j = 0..J with N = 2^J the teacher's number of steps. Level J is the base case
(target: the frozen teacher); levels j < J are recursive (target: two EMA-student steps of size h/2).
A draw picks the base case with probability ``base_fraction``, else a recursive level with probability
proportional to ``level_weights[j]`` (default J - j: larger steps, which the student samples with, weigh
more), then a time on that level's grid, t = k h with k ~ U{0, ..., 1/h - 1}, so t + h <= 1.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor


class DyadicStepSizes:
    def __init__(self, teacher_steps: int = 1024, base_fraction: float = 0.25, level_weights: Optional[Sequence[float]] = None) -> None:
        levels = math.log2(teacher_steps)
        if teacher_steps < 2 or levels != int(levels):
            raise ValueError(f"teacher_steps must be a power of two >= 2 (the teacher's step count), got {teacher_steps}.")
        if not 0.0 < base_fraction < 1.0:
            raise ValueError(f"base_fraction must lie in (0, 1), got {base_fraction}.")
        self.teacher_steps = teacher_steps
        self.num_levels = int(levels)  # J: recursive levels 0..J-1, base level J
        weights = torch.tensor(
            list(level_weights) if level_weights is not None else [float(self.num_levels - j) for j in range(self.num_levels)],
            dtype=torch.float64,
        )
        if weights.shape != (self.num_levels,) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"level_weights needs {self.num_levels} non-negative weights (levels h=1..2/N), got {weights.tolist()}.")
        self.level_probs = (1 - base_fraction) * weights / weights.sum()
        self.base_fraction = base_fraction

    def sample(self, batch: int, generator: Optional[torch.Generator] = None, device=None) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (t [B], h [B], is_base [B] bool)."""
        probs = torch.cat([self.level_probs, torch.tensor([self.base_fraction], dtype=torch.float64)])
        level = torch.multinomial(probs.expand(batch, -1), 1, generator=generator).squeeze(-1)
        steps_per_unit = 2.0 ** level.double()
        k = torch.floor(torch.rand(batch, generator=generator, dtype=torch.float64) * steps_per_unit)
        h = 1.0 / steps_per_unit
        t = k * h
        return t.float().to(device), h.float().to(device), (level == self.num_levels).to(device)
