"""Conditional quality on a synthetic language: how good a completion is, given what was known.

The oracle scores a completion exactly. With the known positions K observed and the filled positions F drawn,

    log p(x_F | x_K) = log p(x) - log p(x_K),   p(x_K) = sum over every x_F of p(x_K, x_F),

where p(x_K) is the forward algorithm with the known positions observed and the others marginalised (every hidden
state emits "anything" with probability one there). Reported over a set of completions, beside each other:

- conditional perplexity of the filled positions, exp(-sum_b log p(x_F^b | x_K^b) / sum_b |F^b|);
- its reverse perplexity: an add-alpha bigram model fit on the completions' transitions into filled positions scores
  held-out data's transitions into the same positions (a completer that drops modes is charged for what it never
  writes), as :func:`~lightning_tsdfm.metrics.diversity.reverse_perplexity` does for whole samples;
- the mean per-completion unigram entropy of the filled tokens (nats), so low perplexity by low diversity is seen.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_tsdfm.data.hmm import HiddenMarkovLanguage, forward_log_likelihood


def known_log_likelihood(language: HiddenMarkovLanguage, tokens: Tensor, known: Tensor) -> Tensor:
    """log p(x_K) per sequence [B] float64: the known positions' marginal, the other positions summed out."""
    tokens = tokens.long().cpu()
    language.check_tokens(tokens)
    observed = language.emission.T[tokens]  # [B, L, S]: P(x_i | s_i)
    observed = torch.where(known.cpu()[..., None], observed, torch.ones_like(observed))
    return forward_log_likelihood(language.initial, language.transition, observed).sum(-1)


def conditional_log_likelihood(language: HiddenMarkovLanguage, tokens: Tensor, known: Tensor) -> Tensor:
    """log p(x_F | x_K) = log p(x) - log p(x_K) per sequence [B] float64 (0 when nothing is filled)."""
    return language.log_likelihood(tokens) - known_log_likelihood(language, tokens, known)


def conditional_perplexity(language: HiddenMarkovLanguage, tokens: Tensor, known: Tensor) -> dict:
    """``cond_ppl`` (corpus-level, over the filled positions), ``nll_stderr`` (standard error of the per-completion
    NLL per filled token) and ``filled_tokens`` (their mean count per completion)."""
    filled = (~known.cpu()).sum(-1).double()
    if bool((filled == 0).any()):
        raise ValueError("conditional perplexity: a completion has no filled position; every template must leave one.")
    nll = -conditional_log_likelihood(language, tokens, known)
    per_token = nll / filled
    stderr = (per_token.std() / math.sqrt(len(per_token))).item() if len(per_token) > 1 else float("nan")
    return {"cond_ppl": math.exp(nll.sum().item() / filled.sum().item()), "nll_stderr": stderr,
            "filled_tokens": filled.mean().item()}


def filled_entropy(tokens: Tensor, known: Tensor) -> Tensor:
    """Per-completion unigram entropy (nats) of the filled tokens, [B] float64."""
    tokens, filled = tokens.long().cpu(), ~known.cpu()
    counts = torch.zeros(tokens.shape[0], int(tokens.max()) + 1, dtype=torch.float64)
    counts.scatter_add_(1, tokens, filled.double())
    freq = counts / counts.sum(-1, keepdim=True).clamp_min(1)
    return -(freq * torch.log(freq.where(freq > 0, torch.ones_like(freq)))).sum(-1)


def conditional_reverse_perplexity(samples: Tensor, known: Tensor, heldout: Tensor, heldout_known: Tensor,
                                   vocab_size: int, alpha: float = 0.1) -> float:
    """Perplexity of ``heldout``'s transitions x_{i-1} -> x_i into its filled positions i (``~heldout_known``) under
    the add-``alpha`` bigram model q(y | x) = (c(x, y) + alpha) / (c(x) + alpha V) of the completions' transitions
    into theirs."""
    def transitions(tokens: Tensor, given: Tensor) -> tuple[Tensor, Tensor]:
        into_filled = ~given.cpu()[:, 1:]
        tokens = tokens.long().cpu()
        return tokens[:, :-1][into_filled], tokens[:, 1:][into_filled]

    for name, ids in (("completions", samples), ("held-out data", heldout)):
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"conditional reverse perplexity: {name} hold ids outside [0, {vocab_size}).")
    before, after = transitions(samples, known)
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    counts.index_put_((before, after), torch.ones(len(before), dtype=torch.float64), accumulate=True)
    log_q = torch.log(counts + alpha) - torch.log(counts.sum(-1, keepdim=True) + alpha * vocab_size)
    before, after = transitions(heldout, heldout_known)
    if not len(before):
        raise ValueError("conditional reverse perplexity: the held-out data has no transition into a filled position.")
    return math.exp(-log_q[before, after].mean().item())
