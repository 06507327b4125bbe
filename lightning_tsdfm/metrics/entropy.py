"""Unigram entropy of samples: for each sample, H = -sum_v f_v log f_v over the frequencies f_v of its own
tokens (nats); reported as the mean over samples. Low entropy next to low perplexity is mode collapse."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import MeanMetric


def unigram_entropy(ids: Tensor) -> Tensor:
    """Per-row unigram entropy in nats of a [B, L] LongTensor, float64 [B]."""
    ids = ids.long()
    counts = torch.zeros(ids.shape[0], int(ids.max()) + 1, dtype=torch.float64, device=ids.device)
    counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=torch.float64))
    freq = counts / ids.shape[1]
    return -(freq * torch.log(freq.where(freq > 0, torch.ones_like(freq)))).sum(-1)


class UnigramEntropy(MeanMetric):
    """Mean per-sample unigram entropy (nats) of generated token ids."""

    def update(self, ids: Tensor) -> None:  # type: ignore[override]
        super().update(unigram_entropy(ids))
