"""Generative perplexity: exp of the judge's mean NLL per token over generated samples.

corpus mean (default):  exp( sum_s NLL_s / sum_s N_s )
per-sample mean:        mean_s exp( NLL_s / N_s )

Uncertainty: :func:`nll_stderr` is the standard error of the corpus-mean NLL per token r = sum NLL_s / sum N_s
over samples (ratio estimator), so exp(log PPL +- 2 SE) brackets the perplexity at about 95%.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class GenerativePerplexity(Metric):
    """Accumulates per-sample (summed NLL in nats, token count) pairs from a judge."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, reduction: str = "corpus", **kwargs) -> None:
        super().__init__(**kwargs)
        if reduction not in ("corpus", "sample"):
            raise ValueError(f"reduction must be 'corpus' or 'sample', got {reduction!r}.")
        self.reduction = reduction
        self.add_state("nll", default=[], dist_reduce_fx="cat")
        self.add_state("count", default=[], dist_reduce_fx="cat")

    def update(self, nll: Tensor, count: Tensor) -> None:
        if not torch.isfinite(nll).all():
            raise ValueError("GenerativePerplexity: the judge returned a non-finite NLL.")
        self.nll.append(nll.double().flatten())
        self.count.append(count.double().flatten())

    def compute(self) -> Tensor:
        nll = torch.cat(self.nll) if isinstance(self.nll, list) else self.nll
        count = torch.cat(self.count) if isinstance(self.count, list) else self.count
        if self.reduction == "corpus":
            return torch.exp(nll.sum() / count.sum().clamp_min(1))
        return torch.exp(nll / count.clamp_min(1)).mean()


def nll_stderr(nll: Tensor, count: Tensor) -> float:
    """SE(r) = sqrt( sum_s (NLL_s - r N_s)^2 / (n (n - 1)) ) / mean_s N_s, r = sum NLL_s / sum N_s (nats per token)."""
    nll, count = nll.double().flatten(), count.double().flatten()
    n = nll.numel()
    if n < 2:
        return float("nan")
    r = nll.sum() / count.sum()
    return (((nll - r * count) ** 2).sum() / (n * (n - 1))).sqrt().item() / count.mean().item()
