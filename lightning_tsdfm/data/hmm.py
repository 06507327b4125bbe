"""Hidden-Markov oracle languages: exact likelihood by the forward algorithm.

A language is a table triple (initial pi [S], transition T [S, S], emission E [S, V]); a *spec* is the
frozen dataclass that builds the tables from a seed. Two families share the tables' code:

- :class:`HMMSpec` (family ``sparse``): a random sparse chain whose rows put almost all mass on
  ``branching`` successors, each state emitting almost only ``emissions_per_state`` tokens. Neighbouring
  tokens are strongly dependent, so a sampler that fills many positions in parallel visibly breaks it.
- :class:`~lightning_tsdfm.data.textlike.TextlikeHMMSpec` (family ``textlike``): a slow topic over a fast
  syntax chain, dependencies at several ranges (see that module).

Both smooth every row with a small uniform mass (``smoothing``) so every sequence has a finite likelihood:

    log p(x_1..x_L) = log sum_s pi(s_1) E(s_1, x_1) prod_i T(s_{i-1}, s_i) E(s_i, x_i)   (forward algorithm)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import Tensor

from lightning_tsdfm.data.sparse_rows import sparse_rows
from lightning_tsdfm.data.textlike import TextlikeHMMSpec


def stationary(transition: Tensor) -> Tensor:
    """pi with pi T = pi, sum(pi) = 1: the linear system (T^T - I) pi = 0 with one row replaced by sum = 1."""
    n = transition.shape[0]
    system = transition.T - torch.eye(n, dtype=torch.float64)
    system[-1] = 1.0
    rhs = torch.zeros(n, dtype=torch.float64)
    rhs[-1] = 1.0
    return torch.linalg.solve(system, rhs).clamp_min(0.0)


@dataclass(frozen=True)
class HMMSpec:
    """The sparse random language; two specs that compare equal define the same language."""

    family: ClassVar[str] = "sparse"

    vocab_size: int = 64
    num_states: int = 32
    branching: int = 3
    emissions_per_state: int = 2
    smoothing: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if not (1 <= self.branching <= self.num_states):
            raise ValueError(f"branching must be in [1, num_states={self.num_states}], got {self.branching}.")
        if not (1 <= self.emissions_per_state <= self.vocab_size):
            raise ValueError(f"emissions_per_state must be in [1, vocab_size={self.vocab_size}].")
        if not (0.0 < self.smoothing < 1.0):
            raise ValueError(f"smoothing must be in (0, 1) so every sequence has finite likelihood, got {self.smoothing}.")

    def tables(self) -> tuple[Tensor, Tensor]:
        """(transition [S, S], emission [S, V]), float64."""
        g = torch.Generator().manual_seed(self.seed)
        transition = sparse_rows(self.num_states, self.num_states, self.branching, self.smoothing, g)
        emission = sparse_rows(self.num_states, self.vocab_size, self.emissions_per_state, self.smoothing, g)
        return transition, emission

    def to_dict(self) -> dict:
        """The card form; the sparse family keeps the keys it always had (no ``family`` key), so old cards read."""
        return asdict(self)


def spec_from_dict(spec: dict):
    """The spec a data card describes: ``family`` names the family (absent: the sparse one)."""
    families = {cls.family: cls for cls in (HMMSpec, TextlikeHMMSpec)}
    fields = dict(spec)
    family = fields.pop("family", "sparse")
    if family not in families:
        raise ValueError(f"Unknown synthetic language family {family!r}: choose one of {sorted(families)}.")
    return families[family](**fields)


class HiddenMarkovLanguage:
    """Sampling and exact log-likelihood of the language a spec defines (float64 tables).

    ``spec`` is an :class:`HMMSpec`, a :class:`TextlikeHMMSpec`, or the dict of either (a data card's ``hmm``).
    """

    def __init__(self, spec) -> None:
        self.spec = spec_from_dict(spec) if isinstance(spec, dict) else spec
        self.transition, self.emission = self.spec.tables()
        self.initial = stationary(self.transition)

    @property
    def vocab_size(self) -> int:
        return self.spec.vocab_size

    @property
    def num_states(self) -> int:
        return self.transition.shape[0]

    def sample(self, num_sequences: int, length: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw [num_sequences, length] token ids, starting from the stationary state distribution
        (inverse-CDF draws: one uniform per state and per token)."""
        transition_cdf, emission_cdf = self.transition.cumsum(-1), self.emission.cumsum(-1)

        def draw(cdf: Tensor) -> Tensor:  # one row per sequence (cdf [N, S]), or one row for all (cdf [S])
            u = torch.rand(num_sequences, 1, generator=generator, dtype=torch.float64) * cdf[..., -1:]
            return torch.searchsorted(cdf, u).squeeze(-1).clamp_max(cdf.shape[-1] - 1)

        state = draw(self.initial.cumsum(-1))
        tokens = torch.empty(num_sequences, length, dtype=torch.long)
        for i in range(length):
            if i > 0:
                state = draw(transition_cdf[state])
            tokens[:, i] = draw(emission_cdf[state])
        return tokens

    def check_tokens(self, tokens: Tensor) -> None:
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(
                f"Oracle judge: token ids must lie in [0, {self.vocab_size}) for this language, got "
                f"[{int(tokens.min())}, {int(tokens.max())}]; were these samples made for another vocabulary?"
            )

    def log_likelihood(self, tokens: Tensor) -> Tensor:
        """Exact log p(x) per sequence, [B] float64, by the forward algorithm in log space."""
        return self.token_log_likelihood(tokens).sum(-1)

    def token_log_likelihood(self, tokens: Tensor) -> Tensor:
        """The chain rule's terms log p(x_i | x_<i) [B, L] float64 (on the CPU), by the forward algorithm."""
        tokens = tokens.long().cpu()
        self.check_tokens(tokens)
        return forward_log_likelihood(self.initial, self.transition, self.emission.T[tokens])

    def true_perplexity(self, length: int, num_sequences: int = 8192, seed: int = 1234) -> tuple[float, float]:
        """Monte-Carlo estimate of exp(H(X_1..X_L) / L) from exact likelihoods of fresh samples.

        Returns (perplexity, standard error of the per-token NLL). This is the perplexity a perfect
        model's samples get from the oracle judge.
        """
        g = torch.Generator().manual_seed(seed)
        nll = -self.log_likelihood(self.sample(num_sequences, length, g)) / length
        return math.exp(nll.mean().item()), (nll.std() / math.sqrt(num_sequences)).item()


def forward_log_likelihood(initial: Tensor, transition: Tensor, emission: Tensor) -> Tensor:
    """Per-position terms log p(y_i | y_<i) [B, L] of the chain rule, by the scaled forward algorithm:

        a_1 = pi * e_1,   a_i = (a_{i-1} T) * e_i,   c_i = sum_s a_i(s),   a_i <- a_i / c_i,   log p(y) = sum_i log c_i.

    ``emission`` [B, L, S] is P(y_i | s_i) of what was observed at each position (any observation model: a
    token's emission column, or a noised state's path-marginal emission), float64.
    """
    b, length, _ = emission.shape
    terms = torch.empty(b, length, dtype=torch.float64)
    alpha = initial.expand(b, -1)
    for i in range(length):
        if i > 0:
            alpha = alpha @ transition
        alpha = alpha * emission[:, i]
        norm = alpha.sum(-1, keepdim=True)
        terms[:, i] = norm.squeeze(-1).log()
        alpha = alpha / norm
    return terms
