"""Score a set of samples with one judge: generative perplexity next to entropy and the sample count."""

from __future__ import annotations

from typing import Sequence

import torch

from lightning_tsdfm.metrics.entropy import UnigramEntropy
from lightning_tsdfm.metrics.generative_perplexity import GenerativePerplexity, nll_stderr
from lightning_tsdfm.metrics.judges import Judge


def evaluate_samples(judge: Judge, tokens: torch.Tensor, texts: Sequence[str] | None = None, reduction: str = "corpus") -> dict:
    """Returns {"judge", "gen_ppl", "nll_stderr", "entropy", "n_samples"}; entropy is over the samples' own token
    ids; nll_stderr is the standard error of log gen_ppl (nats per token)."""
    if len(tokens) == 0:
        raise ValueError("No samples to evaluate.")
    if judge.wants == "text" and texts is None:
        raise ValueError(f"Judge {judge.name} scores text: pass the decoded samples.")
    nll, count = judge.score(tokens if judge.wants == "tokens" else list(texts))
    ppl = GenerativePerplexity(reduction)
    ppl.update(nll, count)
    entropy = UnigramEntropy()
    entropy.update(tokens)
    return {"judge": judge.name, "gen_ppl": ppl.compute().item(), "nll_stderr": nll_stderr(nll, count),
            "entropy": entropy.compute().item(), "n_samples": len(tokens)}
