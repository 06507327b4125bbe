"""The data path of a hidden-Markov language, exactly: the energy of a noised state and its posterior.

On a mixture path a noised state x_t is data x1 with each position kept with probability kappa(t), else a
source draw. Given the hidden state s_i, position i is observed through the *path-marginal emission*

    e_t(s, y) = sum_x E(s, x) p_t(y | x) = kappa E(s, y) + (1 - kappa) p_source(y)
              (mask source: 1 - kappa at a masked position, kappa E(s, y) at a revealed one),

so the forward algorithm with e_t gives p_t(x_t) exactly, and forward-backward gives the posterior of x1:

    energy:     E*(x_t, t) = -log p_t(x_t) / L,   per token e_i = -log p_t(x_t^i | x_t^{<i});
    posterior:  p(x1^i = y | x_t) = sum_s P(s_i = s | x_t) E(s, y) p_t(x_t^i | y) / e_t(s, x_t^i).

:class:`OracleCompass` is the first, a compass that is exactly right (the upper bound of what a learned
compass can give); :meth:`PathOracle.posterior` is the second, the denoiser a perfect teacher would be.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_tsdfm.data.hmm import HiddenMarkovLanguage, forward_log_likelihood
from lightning_tsdfm.paths import MaskSource, MixturePath


class PathOracle:
    """Exact quantities of a language's mixture path, in float64 on the CPU."""

    def __init__(self, language: HiddenMarkovLanguage, path: MixturePath) -> None:
        if path.source.vocab_size != language.vocab_size:
            raise ValueError(f"The path's vocabulary ({path.source.vocab_size}) is not the language's "
                             f"({language.vocab_size}): the oracle needs states of this language.")
        self.language = language
        self.path = path

    def token_likelihood(self, x_t: Tensor, t: Tensor) -> Tensor:
        """p_t(x_t^i | x1^i = y) [B, L, V]."""
        kappa = self.path.scheduler.kappa(t.double().cpu())[:, None, None]
        v = self.language.vocab_size
        x_t = x_t.long().cpu()
        keep = torch.nn.functional.one_hot(x_t.clamp_max(v - 1), v).double()
        if isinstance(self.path.source, MaskSource):
            masked = (x_t == self.path.source.mask_id)[..., None]
            return torch.where(masked, 1 - kappa, kappa * keep)
        return kappa * keep + (1 - kappa) / v

    def emission(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(p_t(x_t^i | x1^i = y) [B, L, V], the path-marginal emission e_t(s, x_t^i) [B, L, S])."""
        likelihood = self.token_likelihood(x_t, t)
        return likelihood, likelihood @ self.language.emission.T

    def log_terms(self, x_t: Tensor, t: Tensor) -> Tensor:
        """log p_t(x_t^i | x_t^{<i}) [B, L] (float64); their sum is log p_t(x_t)."""
        _, emission = self.emission(x_t, t)
        return forward_log_likelihood(self.language.initial, self.language.transition, emission)

    def posterior(self, x_t: Tensor, t: Tensor) -> Tensor:
        """p(x1^i = y | x_t) [B, L, V] (float64), by the scaled forward-backward algorithm."""
        likelihood, emission = self.emission(x_t, t)
        transition, b, length = self.language.transition, x_t.shape[0], x_t.shape[1]
        alphas, norms = [], []
        alpha = self.language.initial.expand(b, -1)
        for i in range(length):
            alpha = (alpha @ transition if i else alpha) * emission[:, i]
            norms.append(alpha.sum(-1, keepdim=True))
            alpha = alpha / norms[-1]
            alphas.append(alpha)
        state_posterior = torch.empty_like(emission)
        beta = torch.ones_like(alpha)
        for i in reversed(range(length)):
            gamma = alphas[i] * beta
            state_posterior[:, i] = gamma / gamma.sum(-1, keepdim=True)
            beta = ((emission[:, i] * beta) @ transition.T) / norms[i]
        weights = state_posterior / emission  # P(s | x_t) / e_t(s, x_t^i)
        return likelihood * (weights @ self.language.emission)


class OracleDenoiser:
    """The exact posterior as a denoiser, ``(x_t, t, h) -> log p(x1 | x_t)`` [B, L, V]: the teacher that a
    perfect factorised model would be, so its N-step samples are the best any per-position sampler can do."""

    def __init__(self, oracle: PathOracle) -> None:
        self.oracle = oracle

    def __call__(self, x_t: Tensor, t: Tensor, h: Tensor | None = None) -> Tensor:
        return self.oracle.posterior(x_t, t).log().float().to(x_t.device)


class OracleCompass:
    """The exact energy of the data path as a compass: e_i = -log p_t(x_t^i | x_t^{<i}), E = mean_i e_i.

    Accepted wherever a compass checkpoint is (``compass=oracle``) for models of a synthetic language.
    """

    kind = "oracle"
    scores = "state"  # it scores the noised states x_{t+h}

    def __init__(self, oracle: PathOracle, seq_len: int) -> None:
        self.oracle = oracle
        self.hparams = {"vocab_size": oracle.language.vocab_size, "seq_len": seq_len}
        self.source_name = oracle.path.source.name

    def energies(self, x: Tensor, t: Tensor) -> Tensor:
        """Per-token energies [B, L] (float32, on x's device) of states x at times t."""
        return (-self.oracle.log_terms(x, t)).float().to(x.device)

    def requires_grad_(self, requires_grad: bool = True) -> "OracleCompass":
        return self

    def eval(self) -> "OracleCompass":
        return self

    def __repr__(self) -> str:
        return f"OracleCompass({self.oracle.language.spec})"
