"""Training times drawn for a batch: i.i.d. uniform, or antithetic (low-discrepancy) as MDLM, DUO and FLM draw them.

Antithetic: one u ~ U(0, 1) per batch, t_b = high * ((u + b / B) mod 1) for b = 0..B-1. Each t_b is still U(0, high),
so every loss stays unbiased; the B times cover [0, high) evenly, which lowers the variance of the batch's loss.
"""

from __future__ import annotations

import torch
from torch import Tensor


def draw_times(batch: int, generator: torch.Generator | None, device, high: float = 1.0,
               antithetic: bool = False) -> Tensor:
    """t [batch] ~ U(0, high): i.i.d., or antithetic (one shared offset, evenly spaced modulo 1)."""
    if not antithetic:
        return torch.rand(batch, device=device, generator=generator) * high
    u = torch.rand(1, device=device, generator=generator)
    return torch.remainder(u + torch.arange(batch, device=device) / batch, 1.0) * high
