"""The two SEDD graphs: the rate matrix Q of the forward process, in column convention Q[to, from].

With the log-linear noise the forward process after total noise sigma is exp(sigma Q), e^{-sigma} = kappa:

- absorb (states 0..V-1 tokens, V = mask): a token moves to the mask at rate 1,
      exp(sQ): a token stays with e^{-s}, goes to the mask with 1 - e^{-s}; the mask stays;
- uniform (states 0..V-1): Q = (1/V) 11^T - I,  exp(sQ) = e^{-s} I + (1 - e^{-s}) 11^T / V.

Both are the library's mixture path with kappa = e^{-sigma} (mask or uniform source). A graph turns the
network output into log-scores log s(x_t)_y ~ log p_t(x_t with y at i) / p_t(x_t) (y a data token; the
score of the current state is s_{x_t} = 1), scores them with the score entropy, and builds the next-state
kernels [B, L, S] (S = number of states) of SEDD's Euler and Tweedie tau-leaping steps.

Every method takes kappa = kappa(tau) per sequence, [B], and log_s [B, L, V] for the data tokens.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor


def _per_sequence(value: Tensor, like: Tensor) -> Tensor:
    """[B] -> [B, 1, 1] in the dtype and device of ``like``."""
    return value.to(device=like.device, dtype=like.dtype)[:, None, None]


def jump_or_stay(log_jump: Tensor, x: Tensor) -> Tensor:
    """Kernel [B, L, S] that moves to y with mass exp(log_jump[y]) and stays at x with the rest.

    ``log_jump`` is -inf at y = x and at unreachable states. When the moved mass T = sum_y exp(log_jump) is
    at least one, the stay mass 1 - T would be negative: it is clamped to 0 and the row renormalised, i.e.
    q = softmax(log_jump). Computed in log space, so any size of score is safe.
    """
    log_total = torch.logsumexp(log_jump, dim=-1, keepdim=True)
    kernel = log_jump.exp().scatter_add_(-1, x[..., None], (-torch.expm1(log_total)).clamp_min(0.0))
    over = log_total >= 0
    if bool(over.any()):
        kernel = torch.where(over, torch.softmax(log_jump, dim=-1), kernel)
    return kernel


def normalise_or_stay(q: Tensor, x: Tensor) -> Tensor:
    """Clamp negatives to 0 and renormalise the rows of q [B, L, S]; a row with no mass left stays at x."""
    q = q.clamp_min(0.0)
    total = q.sum(-1, keepdim=True)
    stay = torch.nn.functional.one_hot(x, q.shape[-1]).to(q.dtype)
    return torch.where(total > 0, q / total.clamp_min(torch.finfo(q.dtype).tiny), stay)


class Graph(ABC):
    """A SEDD graph over ``vocab_size`` data tokens: its source, score parameterisation, loss and kernels."""

    #: registry name (``absorb`` | ``uniform``)
    name: str
    #: the library source of the same forward process (``mask`` | ``uniform``)
    source: str

    def __init__(self, vocab_size: int) -> None:
        if vocab_size < 2:
            raise ValueError(f"A graph needs at least 2 tokens, got vocab_size={vocab_size}.")
        self.vocab_size = vocab_size

    @property
    @abstractmethod
    def num_states(self) -> int:
        """S: data tokens, plus the mask for the absorbing graph (= the source's input vocabulary)."""

    @abstractmethod
    def log_score(self, output: Tensor, kappa: Tensor) -> Tensor:
        """log s(x_t)_y [B, L, V] from the backbone output [B, L, V] at noise level kappa [B]."""

    @abstractmethod
    def score_entropy(self, log_s: Tensor, x_t: Tensor, x1: Tensor, kappa: Tensor) -> Tensor:
        """Per-position score entropy [B, L] >= 0 (not yet weighted by d sigma / d tau)."""

    @abstractmethod
    def euler_kernel(self, x: Tensor, log_s: Tensor, rate_step: Tensor) -> Tensor:
        """Euler step: q(y) = rate_step * Q[x, y] * s_y for y != x, q(x) = 1 - sum,
        rate_step = |d sigma / d tau|(tau) h [B]."""

    @abstractmethod
    def tweedie_kernel(self, x: Tensor, log_s: Tensor, kappa: Tensor, kappa_next: Tensor) -> Tensor:
        """Tweedie tau-leaping from kappa to kappa_next >= kappa (Delta sigma = log(kappa_next / kappa)):
        q(y) ∝ [exp(-Delta sigma Q) s]_y exp(Delta sigma Q)[x, y], with s_x = 1."""

    @abstractmethod
    def denoise_kernel(self, x: Tensor, log_s: Tensor, kappa: Tensor) -> Tensor:
        """The last step, to tau = 1 (kappa_next = 1): a Tweedie step that leaves no noise state."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class AbsorbingGraph(Graph):
    """Tokens 0..V-1 move to the mask V at rate 1; the mask stays. Only masked positions carry scores.

    log s = out - log(e^sigma - 1) - log V, with e^sigma - 1 = (1 - kappa) / kappa: an output of 0 gives
    sum_y s_y = 1 / (e^sigma - 1), the exact total of the scores at a masked position
    (s_y = p(x1 = y | x_t) / (e^sigma - 1)).
    """

    name = "absorb"
    source = "mask"

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def num_states(self) -> int:
        return self.vocab_size + 1

    def log_score(self, output: Tensor, kappa: Tensor) -> Tensor:
        log_expm1_sigma = torch.log1p(-kappa) - torch.log(kappa)
        return output - _per_sequence(log_expm1_sigma, output) - math.log(self.vocab_size)

    def score_entropy(self, log_s: Tensor, x_t: Tensor, x1: Tensor, kappa: Tensor) -> Tensor:
        """At masked positions, with r = p_t(x1 | x1) / p_t(mask | x1) = 1 / (e^sigma - 1) and K(r) = r (log r - 1):

            sum_y s_y - r log s_{x1} + K(r);     0 at revealed positions.

        Computed as r [expm1(logsumexp(d)) - d_{x1}] with d = log(s / r), free of the cancellation of terms ~ r.
        """
        log_r = (torch.log(kappa) - torch.log1p(-kappa)).to(log_s)[:, None]  # [B, 1]
        d = log_s - log_r[..., None]
        d_x1 = d.gather(-1, x1[..., None]).squeeze(-1)
        entropy = log_r.exp() * (torch.expm1(torch.logsumexp(d, dim=-1)) - d_x1)
        return torch.where(x_t == self.mask_id, entropy, torch.zeros_like(entropy))

    def _from_mask(self, x: Tensor, log_jump_tokens: Tensor) -> Tensor:
        """Kernel moving a masked position to token a with mass exp(log_jump_tokens[a]); revealed tokens stay."""
        log_jump = torch.nn.functional.pad(log_jump_tokens, (0, 1), value=float("-inf"))
        return jump_or_stay(log_jump.masked_fill((x != self.mask_id)[..., None], float("-inf")), x)

    def euler_kernel(self, x: Tensor, log_s: Tensor, rate_step: Tensor) -> Tensor:
        """Masked: q(a) = rate_step * s_a for tokens a, q(mask) = 1 - sum_a q(a); a token stays."""
        return self._from_mask(x, log_s + _per_sequence(torch.log(rate_step), log_s))

    def tweedie_kernel(self, x: Tensor, log_s: Tensor, kappa: Tensor, kappa_next: Tensor) -> Tensor:
        """Masked: q(a) = (e^{Delta sigma} - 1) s_a, e^{Delta sigma} - 1 = (kappa_next - kappa) / kappa,
        q(mask) = 1 - sum_a q(a); a token stays (no mass ever returns to the mask)."""
        log_grow = torch.log(kappa_next - kappa) - torch.log(kappa)
        return self._from_mask(x, log_s + _per_sequence(log_grow, log_s))

    def denoise_kernel(self, x: Tensor, log_s: Tensor, kappa: Tensor) -> Tensor:
        """The Tweedie step to kappa = 1 with the mask column removed: masked positions take q(a) = s_a / sum s."""
        probs = torch.nn.functional.pad(torch.softmax(log_s, dim=-1), (0, 1))
        stay = torch.nn.functional.one_hot(x, self.num_states).to(probs.dtype)
        return torch.where((x == self.mask_id)[..., None], probs, stay)


class UniformGraph(Graph):
    """Q = (1/V) 11^T - I: every token moves to a uniform token at rate (V-1)/V. log s = out (no shift)."""

    name = "uniform"
    source = "uniform"

    @property
    def num_states(self) -> int:
        return self.vocab_size

    def log_score(self, output: Tensor, kappa: Tensor) -> Tensor:
        return output

    def score_entropy(self, log_s: Tensor, x_t: Tensor, x1: Tensor, kappa: Tensor) -> Tensor:
        """sum_{y != x_t} (1/V) [s_y - r_y log s_y + K(r_y)], r_y = p_t(y | x1) / p_t(x_t | x1),
        p_t(y | x1) = kappa delta(y, x1) + (1 - kappa) / V."""
        vocab = self.vocab_size
        kappa_ = _per_sequence(kappa, log_s)
        base = _per_sequence((1.0 - kappa) / vocab, log_s)  # (1 - kappa) / V, [B, 1, 1]
        numerator = base + kappa_ * torch.nn.functional.one_hot(x1, vocab).to(log_s)
        denominator = base[..., 0] + kappa_[..., 0] * (x_t == x1).to(log_s)
        log_r = numerator.log() - denominator.log()[..., None]
        d = log_s - log_r  # s - r log s + K(r) = r (e^d - 1 - d), d = log(s / r)
        terms = log_r.exp() * (torch.expm1(d) - d)
        others = torch.nn.functional.one_hot(x_t, vocab) == 0
        return torch.where(others, terms, torch.zeros_like(terms)).sum(-1) / vocab

    def euler_kernel(self, x: Tensor, log_s: Tensor, rate_step: Tensor) -> Tensor:
        """q(y) = rate_step * s_y / V for y != x, q(x) = 1 - sum."""
        log_jump = log_s + _per_sequence(torch.log(rate_step / self.vocab_size), log_s)
        itself = torch.nn.functional.one_hot(x, self.vocab_size).bool()
        return jump_or_stay(log_jump.masked_fill(itself, float("-inf")), x)

    def tweedie_kernel(self, x: Tensor, log_s: Tensor, kappa: Tensor, kappa_next: Tensor) -> Tensor:
        """stag_y = e^{Ds} s_y + (1 - e^{Ds}) (sum_z s_z) / V,  trans_y = e^{-Ds} delta(y, x) + (1 - e^{-Ds}) / V,
        q ∝ clamp(stag * trans, 0), with e^{Ds} = kappa_next / kappa and s_x = 1. Both factors are linear in
        s, so s is divided by its row maximum first (no overflow)."""
        itself = torch.nn.functional.one_hot(x, self.vocab_size).bool()
        log_full = log_s.masked_fill(itself, 0.0)
        s = (log_full - log_full.amax(-1, keepdim=True)).exp()
        grow = _per_sequence(kappa_next / kappa, s)  # e^{Delta sigma} >= 1
        staggered = grow * s + (1.0 - grow) * s.mean(-1, keepdim=True)
        shrink = 1.0 / grow  # e^{-Delta sigma}
        transition = shrink * itself.to(s.dtype) + (1.0 - shrink) / self.vocab_size
        return normalise_or_stay(staggered * transition, x)

    def denoise_kernel(self, x: Tensor, log_s: Tensor, kappa: Tensor) -> Tensor:
        return self.tweedie_kernel(x, log_s, kappa, torch.ones_like(kappa))


GRAPHS: dict[str, type[Graph]] = {"absorb": AbsorbingGraph, "uniform": UniformGraph}


def make_graph(name: str, vocab_size: int) -> Graph:
    """The graph registered as ``name`` (``absorb`` | ``uniform``) over ``vocab_size`` data tokens."""
    if name not in GRAPHS:
        raise ValueError(f"Unknown graph {name!r}: choose one of {', '.join(map(repr, GRAPHS))}.")
    return GRAPHS[name](vocab_size)
