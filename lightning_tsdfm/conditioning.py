"""Conditional generation: known tokens that every step keeps, from t = 0 to t = 1.

A :class:`Given` holds, per sequence, the known tokens y and where they are (``known`` [B, L]); the other positions
are the ones to fill. A sampler conditioned on it draws from the model's p(x1 | x1^known = y):

- x_0 ~ source with the known positions set to y (with the mask source: revealed from the start, which is what
  the model's path gives at any t where they happen to be revealed);
- every jump keeps them: the posterior p(x1^i | x_t) is delta(y^i) at a known position (so a uniform source's jump,
  which may move every position, moves a known one only to itself), and a next-state kernel q(x_{t+h}^i | x_t) is
  delta(x_t^i) there (excluded from the moves).

:class:`ConditionedJump` wraps any :class:`~lightning_tsdfm.jumps.JumpPolicy` (blind or guided) so: a guided jump's
K candidates agree on the known tokens, and its compass chooses only among fillings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from lightning_tsdfm.jumps import Candidates, JumpPolicy
from lightning_tsdfm.paths import MixturePath


@dataclass(frozen=True)
class Given:
    """Known tokens ``tokens`` [B, L] (long) at the positions ``known`` [B, L] (bool); elsewhere ``tokens`` is
    ignored."""

    tokens: Tensor
    known: Tensor

    def __post_init__(self) -> None:
        if self.tokens.shape != self.known.shape or self.tokens.dim() != 2:
            raise ValueError(f"Given needs tokens and known of one shape [B, L], got {list(self.tokens.shape)} and "
                             f"{list(self.known.shape)}.")
        if self.known.dtype != torch.bool:
            raise ValueError(f"Given.known must be a bool tensor, got {self.known.dtype}.")

    @classmethod
    def nothing(cls, batch: int, length: int, device=None) -> "Given":
        """B sequences of L positions with nothing known."""
        return cls(torch.zeros(batch, length, dtype=torch.long, device=device),
                   torch.zeros(batch, length, dtype=torch.bool, device=device))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def length(self) -> int:
        return self.tokens.shape[1]

    def rows(self, first: int, size: int) -> "Given":
        """Sequences first .. first + size - 1."""
        return Given(self.tokens[first:first + size], self.known[first:first + size])

    def select(self, rows: Tensor) -> "Given":
        """The sequences ``rows`` picks (a bool mask [B] or indices)."""
        return Given(self.tokens[rows], self.known[rows])

    def columns(self, first: int, size: int) -> "Given":
        """Positions first .. first + size - 1 of every sequence."""
        return Given(self.tokens[:, first:first + size], self.known[:, first:first + size])

    def to(self, device) -> "Given":
        return Given(self.tokens.to(device), self.known.to(device))

    def impose(self, x: Tensor) -> Tensor:
        """x [B, L] with the known tokens written in."""
        return torch.where(self.known.to(x.device), self.tokens.to(x.device), x)

    def kept(self, x: Tensor) -> bool:
        """Whether x [B, L] holds every known token."""
        return bool(torch.equal(self.impose(x), x))

    def posterior(self, probs: Tensor) -> Tensor:
        """p(x1 | x_t) [..., B, L, V] with p(x1^i) = delta(y^i) at the known positions."""
        known = self.known.to(probs.device)
        one_hot = torch.nn.functional.one_hot(self.tokens.to(probs.device).clamp(0, probs.shape[-1] - 1),
                                              probs.shape[-1]).to(probs.dtype)
        return torch.where(known[..., None], one_hot, probs)

    def kernel(self, kernel: Tensor, x_t: Tensor) -> Tensor:
        """q(x_{t+h} | x_t) [..., B, L, S] with q(x_{t+h}^i) = delta(x_t^i) at the known positions."""
        stay = torch.nn.functional.one_hot(x_t, kernel.shape[-1]).to(kernel.dtype).expand(kernel.shape)
        return torch.where(self.known.to(kernel.device)[..., None], stay, kernel)


def check_given(given: Given | None, num_samples: int, seq_len: int, who: str) -> None:
    """``given`` (None: nothing known) must hold one row of ``seq_len`` positions per sample of ``who``."""
    if given is not None and (len(given), given.length) != (num_samples, seq_len):
        raise ValueError(f"{who} samples {num_samples} sequences of {seq_len} tokens, but the known tokens are given "
                         f"for {len(given)} of {given.length}: give one row of seq_len positions per sample.")


class ConditionedJump:
    """``jump`` that never moves the known tokens of ``given``: it draws from the posterior (or next-state kernel)
    with the known positions fixed (:meth:`Given.posterior`, :meth:`Given.kernel`), and writes them in again, so a
    state that holds them keeps them whatever the wrapped policy."""

    def __init__(self, jump: JumpPolicy, given: Given) -> None:
        self.jump = jump
        self.given = given

    def __call__(self, x_t: Tensor, probs: Tensor, t: Tensor, h: Tensor, path: MixturePath,
                 generator: Optional[torch.Generator] = None) -> Tensor:
        return self.given.impose(self.jump(x_t, self.given.posterior(probs), t, h, path, generator))

    def draw_candidates(self, x_t, probs, t, h, path, generator=None) -> Candidates:
        drawn = self.jump.draw_candidates(x_t, self.given.posterior(probs), t, h, path, generator)
        return Candidates(self.given.impose(drawn.kept), self.given.impose(drawn.states), drawn.keep_probabilities)

    def transition(self, x_t: Tensor, kernel: Tensor, t: Tensor, h: Tensor,
                   generator: Optional[torch.Generator] = None) -> Tensor:
        return self.given.impose(self.jump.transition(x_t, self.given.kernel(kernel, x_t), t, h, generator))

    def select(self, rows: Tensor) -> "ConditionedJump":
        """The jump of the sequences ``rows`` picks (a bool mask [B] or indices), for a sub-batch of them."""
        return ConditionedJump(self.jump, self.given.select(rows))

    def __repr__(self) -> str:
        return f"ConditionedJump({self.jump!r}, {int(self.given.known.sum())} known tokens)"


def for_rows(jump: JumpPolicy, rows: Tensor) -> JumpPolicy:
    """``jump`` for the sub-batch ``rows`` picks: a :class:`ConditionedJump` keeps only those rows' known tokens; any
    other jump holds nothing per sequence and is itself."""
    return jump.select(rows) if isinstance(jump, ConditionedJump) else jump
