"""The noisy states x_t the student is trained on, one per block, stitched into one row.

- **trajectory states** (on-policy): round r of a block is its state just before its r-th decoding step, i.e. the
  tokens unmasked at steps >= r are masked again. Each block draws r uniformly among the rounds that unmasked
  something, so the fully masked block (r = 0) can be drawn, the clean block never is, and every block keeps at
  least one mask;
- **random states** (off-policy, block diffusion's own training): each block draws a mask rate u ~ U(0, 1) and
  masks each token with probability u; a block left with no mask gets one, at a uniformly drawn token.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _by_block(x: Tensor, block_size: int) -> Tensor:
    batch, length = x.shape
    return x.view(batch, length // block_size, block_size)


def trajectory_states(x0: Tensor, step_index: Tensor, block_size: int, steps_per_block: int, mask_id: int,
                      generator: torch.Generator | None = None) -> Tensor:
    """One state per block from the rollout (``x0`` [B, L] and the decoding step of each token), stitched: [B, L]."""
    steps = _by_block(step_index, block_size)  # [B, N, B_size]
    rounds = torch.arange(steps_per_block, device=x0.device)
    active = (steps[..., None] == rounds).any(-2)  # [B, N, S]: round r unmasked something
    if not active.any(-1).all():
        raise ValueError("Every block of a rollout must have been decoded (step indices in [0, steps_per_block)).")
    u = torch.rand(active.shape, device=x0.device, generator=generator)
    chosen = torch.where(active, u, -1.0).argmax(-1)  # uniform among the active rounds
    remask = steps >= chosen[..., None]
    return torch.where(remask, mask_id, _by_block(x0, block_size)).view_as(x0)


def random_states(x0: Tensor, block_size: int, mask_id: int, generator: torch.Generator | None = None) -> Tensor:
    """Per block a rate u ~ U(0, 1), each token masked with probability u, at least one mask a block: [B, L]."""
    blocks = _by_block(x0, block_size)
    rate = torch.rand(blocks.shape[:2], device=x0.device, generator=generator)[..., None]
    masked = torch.rand(blocks.shape, device=x0.device, generator=generator) < rate
    one = torch.rand(blocks.shape, device=x0.device, generator=generator).argmax(-1, keepdim=True)
    masked |= (~masked.any(-1, keepdim=True)) & (torch.arange(block_size, device=x0.device) == one)
    return torch.where(masked, mask_id, blocks).view_as(x0)
