"""Prompt-masked training: a share of each batch trains as conditional samples, held as the conditional samplers
hold them (:mod:`lightning_tsdfm.conditioning`): the known tokens are part of x_t at every t and the loss counts only
the positions to fill.

The law of the known sets of a batch x1 [B, L] (L >= 2): each sequence is picked with probability ``share``,
independently; a picked one draws its kind uniformly from ``kinds`` and m ~ U{1, .., L - 1} positions to fill:

- ``prefix``: K = {0, .., L - m - 1}, a prompt whose last m positions are continued;
- ``infill``: K = {0, .., a - 1} u {a + m, .., L - 1}, a ~ U{0, .., L - m}: a known head and tail around a span of
  m positions to fill (a = 0: a known suffix; a = L - m: a prompt).

Known positions take their data token, x_t^i = x1^i for i in K. Every sequence draws four uniforms from the training
generator whether picked or not; share 0 draws nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.errors import UserError

PromptKind = Literal["prefix", "infill"]
PROMPT_KINDS: tuple[str, ...] = ("prefix", "infill")


@dataclass(frozen=True)
class PromptMasking:
    """Draws the known sets of a training batch (module docstring) and holds their tokens in x_t."""

    share: float = 0.0
    kinds: tuple[str, ...] = PROMPT_KINDS

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise UserError(f"prompt_masking is the share of each batch's sequences trained as conditional samples, so "
                            f"it lies in [0, 1]; got {self.share}: use 0 to train unconditionally, or e.g. 0.5.")
        unknown = [kind for kind in self.kinds if kind not in PROMPT_KINDS]
        if unknown or not self.kinds:
            raise UserError(f"prompt_kinds must name one or more of {list(PROMPT_KINDS)}, got {list(self.kinds)}.")

    @classmethod
    def for_length(cls, share: float, kinds, seq_len: int) -> "PromptMasking":
        """The masking of a module's ``prompt_masking`` and ``prompt_kinds`` for sequences of ``seq_len`` tokens: a
        conditional sample needs a known position and one to fill, so L >= 2 when ``share`` > 0."""
        masking = cls(share, tuple(kinds))
        if share > 0 and seq_len < 2:
            raise UserError(f"prompt_masking={share} needs sequences of 2 or more tokens (one known, one to fill), "
                            f"got seq_len={seq_len}: set prompt_masking to 0.")
        return masking

    def draw(self, x1: Tensor, generator: torch.Generator | None) -> Given | None:
        """The known tokens of the batch x1 [B, L], drawn by the module docstring's law; None (no draw) at share 0."""
        if self.share == 0:
            return None
        batch, length = x1.shape
        u = torch.rand(batch, 4, generator=generator, device=x1.device, dtype=torch.float64)
        picked = u[:, 0] < self.share
        is_infill = torch.tensor([kind == "infill" for kind in self.kinds], device=x1.device)
        infill = is_infill[(u[:, 1] * len(self.kinds)).long().clamp_max(len(self.kinds) - 1)]
        to_fill = 1 + (u[:, 2] * (length - 1)).long().clamp_max(length - 2)  # m ~ U{1..L-1}
        span_start = (u[:, 3] * (length - to_fill + 1)).long().clamp_max(length - to_fill)  # a ~ U{0..L-m}
        start = torch.where(infill, span_start, length - to_fill)
        position = torch.arange(length, device=x1.device)
        hole = (position >= start[:, None]) & (position < (start + to_fill)[:, None])
        return Given(x1, picked[:, None] & ~hole)

    def condition(self, x1: Tensor, x_t: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Given | None]:
        """(x_t with the drawn known tokens of x1 written in, those known tokens); (x_t, None) at share 0."""
        given = self.draw(x1, generator)
        return (x_t, None) if given is None else (given.impose(x_t), given)


def positions_to_fill(positions: Tensor, given: Given | None) -> Tensor:
    """The loss positions ``positions`` [B, L] (bool) less the known ones; ``positions`` itself without a Given."""
    return positions if given is None else positions & ~given.known
