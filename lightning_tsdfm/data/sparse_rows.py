"""Random sparse stochastic matrices: the rows of the synthetic languages' transition and emission tables."""

from __future__ import annotations

import torch
from torch import Tensor


def sparse_rows(rows: int, cols: int, support: int, smoothing: float, g: torch.Generator,
                allowed: Tensor | None = None) -> Tensor:
    """[rows, cols] float64 stochastic matrix: each row puts Dirichlet(1) mass on ``support`` random columns
    (drawn from ``allowed`` [rows, n] column ids when given), mixed with ``smoothing`` spread uniformly."""
    weights = torch.zeros(rows, cols, dtype=torch.float64)
    for r in range(rows):
        pool = allowed[r] if allowed is not None else torch.arange(cols)
        idx = pool[torch.randperm(len(pool), generator=g)[:support]]
        w = -torch.log(torch.rand(len(idx), generator=g, dtype=torch.float64))  # Dirichlet(1) via exponentials
        weights[r, idx] = w / w.sum()
    return (1 - smoothing) * weights + smoothing / cols
