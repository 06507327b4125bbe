"""Who sees whom in block diffusion: visibility masks and position ids of the rows the student reads.

A row is a prompt of P tokens followed by a completion of L tokens in blocks of B. Block ids: the prompt is
block 0, completion token i is in block 1 + i // B. Two layouts:

- **rollout row** [prompt | x], length P + n: token q sees token k iff block(k) <= block(q) (block-causal: a
  clean prefix block sees the blocks before it, the current block is bidirectional and sees the whole prefix);
- **doubled row** [prompt | x0 | x_t], length P + 2L, for training on every block at once: the clean half is
  the rollout row of x0; a noisy token of block b sees the prompt, the clean blocks before b and the noisy tokens
  of its own block b; no clean token sees a noisy one. Noisy token i takes the position of clean token i.

For block b of the doubled row this is exactly the rollout row [prompt | x0 blocks < b | x_t block b], so one
forward gives every block's logits as the rollout computes them.
"""

from __future__ import annotations

import torch
from torch import Tensor


def block_ids(prompt_len: int, length: int, block_size: int, device=None) -> Tensor:
    """Block id of each token of [prompt | completion]: 0 for the prompt, 1 + i // B for completion token i."""
    completion = 1 + torch.arange(length, device=device) // block_size
    return torch.cat([torch.zeros(prompt_len, dtype=torch.long, device=device), completion])


def block_causal_mask(prompt_len: int, length: int, block_size: int, device=None) -> Tensor:
    """Bool [P + n, P + n]: query q may attend to key k iff block(k) <= block(q)."""
    ids = block_ids(prompt_len, length, block_size, device)
    return ids[None, :] <= ids[:, None]


def doubled_mask(prompt_len: int, length: int, block_size: int, device=None) -> Tensor:
    """Bool [P + 2L, P + 2L] of the row [prompt | x0 | x_t] (see the module docstring)."""
    n = prompt_len + length
    ids = block_ids(prompt_len, length, block_size, device)
    noisy = ids[prompt_len:]
    mask = torch.zeros(n + length, n + length, dtype=torch.bool, device=device)
    mask[:n, :n] = ids[None, :] <= ids[:, None]
    mask[n:, :n] = ids[None, :] < noisy[:, None]  # the prompt (block 0) and the clean blocks before its own
    mask[n:, n:] = noisy[None, :] == noisy[:, None]  # its own noisy block, both ways
    return mask


def doubled_positions(prompt_len: int, length: int, device=None) -> Tensor:
    """Position ids [P + 2L] of [prompt | x0 | x_t]: 0..P+L-1, then x_t token i at the position of x0 token i."""
    clean = torch.arange(prompt_len + length, device=device)
    return torch.cat([clean, clean[prompt_len:]])
