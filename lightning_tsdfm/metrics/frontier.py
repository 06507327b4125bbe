"""Perplexity at matched entropy: the value of a temperature sweep's curve at a reference entropy.

Generative perplexity rewards low entropy, so two samplers are compared where their samples are equally
diverse. A sweep over sampling temperatures gives points (H_T, log PPL_T, SE_T); between the two points
whose entropies bracket the reference H*, log perplexity is interpolated linearly in entropy:

    w = (H* - H_a) / (H_b - H_a),   log PPL(H*) = (1 - w) log PPL_a + w log PPL_b,
    SE(H*) = sqrt((1 - w)^2 SE_a^2 + w^2 SE_b^2)      (independent sample sets).

The mode-coverage figure ``reverse_ppl``, where measured, is interpolated with the same weight in log space.
A reference outside the swept entropies is not extrapolated: widen the sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SweepPoint:
    """One temperature of a sweep: its sampling temperature, entropy, perplexity and the SE of log perplexity."""

    temperature: float
    entropy: float
    gen_ppl: float
    nll_stderr: float
    reverse_ppl: float | None = None


@dataclass(frozen=True)
class MatchedPerplexity:
    gen_ppl: float
    nll_stderr: float
    #: the two sweep temperatures whose entropies bracket the reference
    temperatures: tuple[float, float]
    reverse_ppl: float | None = None


def matched_perplexity(points: list[SweepPoint], reference_entropy: float) -> MatchedPerplexity | None:
    """Log-interpolated perplexity at ``reference_entropy``, or None when no two points bracket it."""
    ordered = sorted(points, key=lambda p: p.entropy)
    for a, b in zip(ordered, ordered[1:]):
        if a.entropy <= reference_entropy <= b.entropy:
            w = 0.0 if b.entropy == a.entropy else (reference_entropy - a.entropy) / (b.entropy - a.entropy)
            log_ppl = (1 - w) * math.log(a.gen_ppl) + w * math.log(b.gen_ppl)
            stderr = math.sqrt((1 - w) ** 2 * a.nll_stderr ** 2 + w ** 2 * b.nll_stderr ** 2)
            reverse = (math.exp((1 - w) * math.log(a.reverse_ppl) + w * math.log(b.reverse_ppl))
                       if a.reverse_ppl and b.reverse_ppl else None)
            return MatchedPerplexity(math.exp(log_ppl), stderr, (a.temperature, b.temperature), reverse)
    if len(ordered) == 1 and ordered[0].entropy == reference_entropy:
        p = ordered[0]
        return MatchedPerplexity(p.gen_ppl, p.nll_stderr, (p.temperature, p.temperature), p.reverse_ppl)
    return None
