"""A seeded random sparse hidden-Markov language: an oracle whose exact likelihood is known.

Hidden states s_1..s_L follow a Markov chain whose rows put almost all mass on ``branching`` successors;
each state emits almost only ``emissions_per_state`` tokens. Both are smoothed by a small uniform mass
(``smoothing``) so every sequence has a finite likelihood. Neighbouring tokens are strongly dependent, so a
sampler that fills many positions in parallel from their marginals visibly breaks the language.

    log p(x_1..x_L) = log sum_s pi(s_1) E(s_1, x_1) prod_i T(s_{i-1}, s_i) E(s_i, x_i)   (forward algorithm)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class HMMSpec:
    """Everything that defines the language; two specs that compare equal define the same language."""

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

    def to_dict(self) -> dict:
        return asdict(self)


class HiddenMarkovLanguage:
    """Sampling and exact log-likelihood of the language defined by an :class:`HMMSpec` (float64 tables)."""

    def __init__(self, spec: HMMSpec) -> None:
        self.spec = spec
        g = torch.Generator().manual_seed(spec.seed)
        self.transition = self._sparse_rows(spec.num_states, spec.num_states, spec.branching, g)
        self.emission = self._sparse_rows(spec.num_states, spec.vocab_size, spec.emissions_per_state, g)
        self.initial = self._stationary(self.transition)

    def _sparse_rows(self, rows: int, cols: int, support: int, g: torch.Generator) -> Tensor:
        weights = torch.zeros(rows, cols, dtype=torch.float64)
        for r in range(rows):
            idx = torch.randperm(cols, generator=g)[:support]
            w = -torch.log(torch.rand(support, generator=g, dtype=torch.float64))  # Dirichlet(1) via exponentials
            weights[r, idx] = w / w.sum()
        eps = self.spec.smoothing
        return (1 - eps) * weights + eps / cols

    @staticmethod
    def _stationary(transition: Tensor) -> Tensor:
        """pi with pi T = pi, sum(pi) = 1: the linear system (T^T - I) pi = 0 with one row replaced by sum = 1."""
        n = transition.shape[0]
        system = transition.T - torch.eye(n, dtype=torch.float64)
        system[-1] = 1.0
        rhs = torch.zeros(n, dtype=torch.float64)
        rhs[-1] = 1.0
        return torch.linalg.solve(system, rhs).clamp_min(0.0)

    @property
    def vocab_size(self) -> int:
        return self.spec.vocab_size

    def sample(self, num_sequences: int, length: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw [num_sequences, length] token ids, starting from the stationary state distribution."""
        state = torch.multinomial(self.initial.expand(num_sequences, -1), 1, generator=generator).squeeze(-1)
        tokens = torch.empty(num_sequences, length, dtype=torch.long)
        for i in range(length):
            if i > 0:
                state = torch.multinomial(self.transition[state], 1, generator=generator).squeeze(-1)
            tokens[:, i] = torch.multinomial(self.emission[state], 1, generator=generator).squeeze(-1)
        return tokens

    def log_likelihood(self, tokens: Tensor) -> Tensor:
        """Exact log p(x) per sequence, [B] float64, by the forward algorithm in log space."""
        tokens = tokens.long().cpu()
        if tokens.min() < 0 or tokens.max() >= self.vocab_size:
            raise ValueError(
                f"Oracle judge: token ids must lie in [0, {self.vocab_size}) for this language, got "
                f"[{int(tokens.min())}, {int(tokens.max())}]; were these samples made for another vocabulary?"
            )
        log_t, log_e = self.transition.log(), self.emission.log()
        alpha = self.initial.log()[None] + log_e[:, tokens[:, 0]].T
        for i in range(1, tokens.shape[1]):
            alpha = torch.logsumexp(alpha[:, :, None] + log_t[None], dim=1) + log_e[:, tokens[:, i]].T
        return torch.logsumexp(alpha, dim=-1)

    def true_perplexity(self, length: int, num_sequences: int = 8192, seed: int = 1234) -> tuple[float, float]:
        """Monte-Carlo estimate of exp(H(X_1..X_L) / L) from exact likelihoods of fresh samples.

        Returns (perplexity, standard error of the per-token NLL). This is the perplexity a perfect
        model's samples get from the oracle judge.
        """
        g = torch.Generator().manual_seed(seed)
        nll = -self.log_likelihood(self.sample(num_sequences, length, g)) / length
        return math.exp(nll.mean().item()), (nll.std() / math.sqrt(num_sequences)).item()
