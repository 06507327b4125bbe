"""Mode coverage of a sample set, figures that a sampling temperature cannot game.

- distinct n-grams: |{distinct n-grams}| / |{n-grams}| over all samples together (collapse onto a few
  sequences lowers it; the data's own value is the reference);
- reverse perplexity: fit an add-alpha bigram model on the samples, score held-out *data* with it,

      q(y | x) = (c(x, y) + alpha) / (c(x) + alpha V),    reverse_ppl = exp(-mean_{(x, y) in data} log q(y | x)),

  so a sampler that drops modes of the data (low entropy, sharp temperature) is charged for the data it
  never produces, while a sampler whose samples are the data gets the data's own bigram perplexity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def distinct_ngrams(tokens: Tensor, n: int = 4) -> float:
    """Distinct n-grams over all n-grams of the rows of ``tokens`` [B, L] (each row's n-grams, not across rows)."""
    if tokens.shape[1] < n:
        raise ValueError(f"Sequences of {tokens.shape[1]} tokens have no {n}-grams.")
    grams = tokens.long().unfold(1, n, 1).reshape(-1, n)
    return len(torch.unique(grams, dim=0)) / len(grams)


def reverse_perplexity(samples: Tensor, heldout: Tensor, vocab_size: int, alpha: float = 0.1) -> float:
    """Perplexity of ``heldout`` [N, L] token transitions under the add-``alpha`` bigram model of ``samples`` [B, L]."""
    for name, ids in (("samples", samples), ("held-out data", heldout)):
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"reverse perplexity: {name} hold ids outside [0, {vocab_size}); wrong vocabulary?")
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    counts.index_put_((samples[:, :-1].reshape(-1).long(), samples[:, 1:].reshape(-1).long()),
                      torch.ones(samples[:, 1:].numel(), dtype=torch.float64), accumulate=True)
    log_q = torch.log(counts + alpha) - torch.log(counts.sum(-1, keepdim=True) + alpha * vocab_size)
    nll = -log_q[heldout[:, :-1].long(), heldout[:, 1:].long()].mean()
    return math.exp(nll.item())
