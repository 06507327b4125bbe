"""Confidence decoding of a block-diffusion student, and ancestral decoding of its causal teacher.

Both draw every token through a :class:`~lightning_tsdfm.jumps.JumpPolicy` (``jump.transition``), on the
completion x [B, L] with the mask id V for what is not yet decoded, in the library's time t = the revealed fraction:

- **confidence decoding** (blocks of B left to right, S steps each). At step s of block b the student gives
  p(. | x) at the block's masked tokens; the next-state kernel is p there (nothing on the mask id) and delta(x)
  elsewhere, so ``jump.transition`` draws x_hat (tempered by the jump's temperature) at every masked token of the
  block. The confidence of a draw is the untempered p(x_hat). Every masked token with confidence above the
  threshold is unmasked, and at least the n_s most confident ones, n_s = B // S (+1 for the first B mod S steps):
  sum_s n_s = B, so the block is done within S steps (in exactly S when nothing passes the threshold).
  With ``TrajectoryShaper`` the K candidates are whole-block draws, scored at t + h (h: the block's masked
  fraction), and the confidence rule acts on the kept one; K = 1 is the blind draw bit for bit.
- **teacher decoding**: token i ~ p_AR(. | prompt, x_<i), one token a step (L steps).

Both may start from a completion that already holds known tokens (``start``: the mask id where to decode); a known
token is never masked, so confidence decoding never draws it, and teacher decoding draws it through a kernel that the
caller's conditioned jump (:class:`~lightning_tsdfm.conditioning.ConditionedJump`) fixes to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_tsdfm.jumps import JumpPolicy

#: (completion x [B, L], block b) -> logits [B, block_size, V] of block b
BlockLogits = Callable[[Tensor, int], Tensor]
#: tokens [B, n] -> next-token logits [B, n, V]
CausalLogits = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class ConfidenceRule:
    """Which masked tokens of a block step s unmasks: those with confidence > ``threshold``, and at least the n_s most
    confident (all that remain when fewer), n_s = B // S + (1 if s < B mod S else 0), so that sum_s n_s = B."""

    block_size: int
    steps_per_block: int
    threshold: float = 0.9

    def __post_init__(self) -> None:
        if not 1 <= self.steps_per_block <= self.block_size:
            raise ValueError(f"steps_per_block must lie in [1, block_size={self.block_size}], got {self.steps_per_block}.")

    def tokens_at(self, step: int) -> int:
        """n_s: the fewest tokens step s unmasks."""
        base, extra = divmod(self.block_size, self.steps_per_block)
        return base + (1 if step < extra else 0)

    def select(self, confidence: Tensor, masked: Tensor, step: int) -> Tensor:
        """Bool [B, n] of the masked tokens step ``step`` unmasks, from ``confidence`` [B, n] and ``masked`` [B, n]."""
        score = torch.where(masked, confidence, float("-inf"))
        rank = score.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)
        most_confident = (rank < self.tokens_at(step)) & masked
        return most_confident | (masked & (confidence > self.threshold))


@dataclass
class Rollout:
    """A decoded completion and, per token, the step of its block (0..S-1) at which it was unmasked."""

    tokens: Tensor
    step_index: Tensor


def _kernel(x: Tensor, rows: slice, probs: Tensor, masked: Tensor, states: int) -> Tensor:
    """Next-state kernel [B, L, states]: ``probs`` (no mass on the mask id) at the ``masked`` tokens of ``rows``,
    delta(x) elsewhere."""
    kernel = F.one_hot(x, states).to(probs.dtype)
    moving = F.pad(probs, (0, states - probs.shape[-1]))
    kernel[:, rows] = torch.where(masked[..., None], moving, kernel[:, rows])
    return kernel


def confidence_decode(block_logits: BlockLogits, batch: int, length: int, rule: ConfidenceRule, jump: JumpPolicy,
                      mask_id: int, generator: torch.Generator | None = None, device=None,
                      start: Tensor | None = None) -> Rollout:
    """Decode ``batch`` completions of ``length`` tokens block by block (see the module docstring), from ``start``
    [batch, length] (default: all masked)."""
    if length % rule.block_size:
        raise ValueError(f"The length {length} is not a multiple of the block size {rule.block_size}.")
    x = torch.full((batch, length), mask_id, dtype=torch.long, device=device) if start is None else start.clone()
    step_index = torch.full_like(x, -1)
    size = rule.block_size
    for block in range(length // size):
        rows = slice(block * size, (block + 1) * size)
        for step in range(rule.steps_per_block):
            masked = x[:, rows] == mask_id
            if not masked.any():
                break
            probs = torch.softmax(block_logits(x, block).float(), dim=-1)
            t = (x != mask_id).float().mean(-1)
            h = masked.float().sum(-1) / length
            drawn = jump.transition(x, _kernel(x, rows, probs, masked, mask_id + 1), t, h, generator)[:, rows]
            confidence = probs.gather(-1, drawn.clamp_max(probs.shape[-1] - 1)[..., None]).squeeze(-1)
            unmask = rule.select(confidence, masked, step)
            x[:, rows] = torch.where(unmask, drawn, x[:, rows])
            step_index[:, rows] = torch.where(unmask, step, step_index[:, rows])
    return Rollout(x, step_index)


def causal_decode(causal_logits: CausalLogits, prompt: Tensor, length: int, jump: JumpPolicy, mask_id: int,
                  generator: torch.Generator | None = None, start: Tensor | None = None) -> Tensor:
    """Ancestral samples [B, length] of a causal LM after ``prompt`` [B, P]: token i drawn from
    p(. | prompt, x_<i) by ``jump.transition`` on the completion (delta elsewhere), from ``start`` (default: all
    masked)."""
    batch = prompt.shape[0]
    x = torch.full((batch, length), mask_id, dtype=torch.long, device=prompt.device) if start is None else start.clone()
    every = torch.ones(batch, 1, dtype=torch.bool, device=prompt.device)
    for i in range(length):
        probs = torch.softmax(causal_logits(torch.cat([prompt, x[:, :i]], dim=1))[:, -1:].float(), dim=-1)
        t = torch.full((batch,), i / length, device=prompt.device)
        kernel = _kernel(x, slice(i, i + 1), probs, every, mask_id + 1)
        x = jump.transition(x, kernel, t, torch.full_like(t, 1 / length), generator)
    return x
