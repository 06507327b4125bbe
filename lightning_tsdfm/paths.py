"""Mixture probability paths between a source distribution (t=0) and data (t=1).

x_t takes x1 at each position with probability kappa(t), else x0 ~ source, independently per position:

    p_t(x_t^i | x1) = kappa(t) * delta(x1^i) + (1 - kappa(t)) * p_source(x_t^i).

The schedule kappa is any :class:`Scheduler`; the library's are :class:`PolynomialScheduler` (kappa = t^n) and
:class:`LogLinearScheduler` (MDLM's).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor

SourceName = Literal["mask", "uniform"]


@runtime_checkable
class Scheduler(Protocol):
    """The schedule of a mixture path: kappa(t), the probability that a position holds its data token at time t,
    increasing to kappa(1) = 1, and its derivative d_kappa(t) = d kappa / dt. Both map [B] times to [B]."""

    def kappa(self, t: Tensor) -> Tensor: ...

    def d_kappa(self, t: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class PolynomialScheduler:
    """kappa(t) = t^n, increasing from kappa(0)=0 to kappa(1)=1."""

    exponent: float = 1.0

    def __post_init__(self) -> None:
        if self.exponent <= 0:
            raise ValueError(f"PolynomialScheduler needs a positive exponent, got {self.exponent}.")

    def kappa(self, t: Tensor) -> Tensor:
        return t**self.exponent

    def d_kappa(self, t: Tensor) -> Tensor:
        return self.exponent * t ** (self.exponent - 1)


@dataclass(frozen=True)
class LogLinearScheduler:
    """kappa(t) = 1 - (1 - eps)(1 - t): MDLM's log-linear noise in the library's time. In MDLM's time t' = 1 - t
    (t' = 1 noise), sigma(t') = -log(1 - (1 - eps) t') masks a position with probability 1 - exp(-sigma) =
    (1 - eps) t' = 1 - kappa(t)."""

    eps: float = 1e-3

    def __post_init__(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"LogLinearScheduler needs 0 <= eps < 1, got {self.eps}.")

    def kappa(self, t: Tensor) -> Tensor:
        return 1 - (1 - self.eps) * (1 - t)

    def d_kappa(self, t: Tensor) -> Tensor:
        return torch.full_like(t, 1 - self.eps)


class Source(ABC):
    """The distribution at t=0. Subclasses say what a draw looks like and which positions may still change."""

    #: number of input ids the denoiser must embed (vocab_size, plus one for a mask token)
    input_vocab_size: int
    vocab_size: int

    @abstractmethod
    def sample(self, shape: tuple[int, ...], generator: Optional[torch.Generator], device) -> Tensor:
        """A draw x0 of the given shape."""

    @abstractmethod
    def unsettled(self, x_t: Tensor) -> Tensor:
        """Bool mask of positions that a jump may still move."""

    @abstractmethod
    def log_prob(self, x0: Tensor) -> Tensor:
        """log p_source(x0^i) per position, the shape of x0."""

    def carry_over(self, logits: Tensor, x_t: Tensor) -> Tensor:
        """Logits of p(x1 | x_t) with what the source already fixes imposed (identity by default)."""
        return logits


class MaskSource(Source):
    """All-mask source: x0 = [MASK]^L with mask id = vocab_size (an id the denoiser never predicts)."""

    name = "mask"

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.mask_id = vocab_size
        self.input_vocab_size = vocab_size + 1

    def sample(self, shape, generator=None, device=None) -> Tensor:
        return torch.full(shape, self.mask_id, dtype=torch.long, device=device)

    def unsettled(self, x_t: Tensor) -> Tensor:
        return x_t == self.mask_id

    def log_prob(self, x0: Tensor) -> Tensor:
        return torch.where(x0 == self.mask_id, 0.0, float("-inf")).double()

    def carry_over(self, logits: Tensor, x_t: Tensor) -> Tensor:
        """A revealed token is x1 (SUBS): p(x1 | x_t) = delta(x_t) there, so it never moves and adds no loss."""
        revealed = ~self.unsettled(x_t)
        one_hot = torch.full_like(logits, float("-inf")).scatter(-1, x_t.clamp_max(logits.shape[-1] - 1)[..., None], 0.0)
        return torch.where(revealed[..., None], one_hot, logits)


class UniformSource(Source):
    """Uniform source: x0^i ~ Uniform{0..V-1}; every position may change until t=1."""

    name = "uniform"

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.mask_id = None
        self.input_vocab_size = vocab_size

    def sample(self, shape, generator=None, device=None) -> Tensor:
        return torch.randint(0, self.vocab_size, shape, generator=generator, device=device)

    def unsettled(self, x_t: Tensor) -> Tensor:
        return torch.ones_like(x_t, dtype=torch.bool)

    def log_prob(self, x0: Tensor) -> Tensor:
        return torch.full(x0.shape, -math.log(self.vocab_size), dtype=torch.float64, device=x0.device)


def make_source(name: SourceName, vocab_size: int) -> Source:
    if name == "mask":
        return MaskSource(vocab_size)
    if name == "uniform":
        return UniformSource(vocab_size)
    raise ValueError(f"Unknown source {name!r}: choose 'mask' or 'uniform'.")


class MixturePath:
    """Samples x_t ~ p_t(. | x1) of the mixture path for a per-sequence time t in [0, 1]; the schedule is
    ``scheduler`` (default kappa(t) = t)."""

    def __init__(self, source: Source, scheduler: Scheduler | None = None) -> None:
        self.source = source
        self.scheduler = scheduler or PolynomialScheduler()

    def sample(self, x1: Tensor, t: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """x1: [B, L] data, t: [B] times. Returns x_t: [B, L]."""
        if t.shape != x1.shape[:1]:
            raise ValueError(f"t must have shape [B]={tuple(x1.shape[:1])}, got {tuple(t.shape)}.")
        x0 = self.source.sample(tuple(x1.shape), generator, x1.device)
        keep_data = torch.rand(x1.shape, generator=generator, device=x1.device) < self.scheduler.kappa(t)[:, None]
        return torch.where(keep_data, x1, x0)

    def jump_probability(self, t: Tensor, h: Tensor) -> Tensor:
        """P(an unsettled position moves to its x1 draw between t and t+h) = (kappa(t+h)-kappa(t)) / (1-kappa(t))."""
        k_t = self.scheduler.kappa(t)
        k_next = self.scheduler.kappa(torch.clamp(t + h, max=1.0))
        return torch.where(k_next >= 1.0, torch.ones_like(k_t), (k_next - k_t) / (1.0 - k_t).clamp_min(1e-12))

    def log_noising(self, x_later: Tensor, x_t: Tensor, t: Tensor, later: Tensor) -> Tensor:
        """log p(x_t | x_later) [..., B] of noising a state at time ``later`` back to time t <= later, summed
        over positions: each keeps its token with probability r = kappa(t) / kappa(later), else redraws it from
        the source, p = r delta(x_t^i, x_later^i) + (1 - r) p_source(x_t^i). ``x_later`` [..., B, L] may carry
        leading candidate axes over x_t [B, L]; t, later: [B]."""
        k_later = self.scheduler.kappa(later.double())
        r = (self.scheduler.kappa(t.double()) / k_later.clamp_min(1e-300)).clamp(0.0, 1.0)[:, None]
        keep = (x_later == x_t).double()
        p = r * keep + (1 - r) * self.source.log_prob(x_t).exp()
        return torch.log(p).sum(-1)
