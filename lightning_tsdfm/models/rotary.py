"""Rotary position embeddings (RoPE): rotate each (even, odd) channel pair of q and k by angle pos * theta_j,
theta_j = base^(-2j/D), so q.k depends only on the relative position."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {head_dim}.")
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, q: Tensor, k: Tensor, position_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q, k: [B, H, L, D] -> rotated q, k; token i sits at position ``position_ids[..., i]`` ([L] or [B, L];
        default 0..L-1)."""
        if position_ids is None:
            length = q.shape[-2]
            angles = torch.outer(torch.arange(length, device=q.device, dtype=torch.float32), self.inv_freq)
        else:
            angles = position_ids.to(q.device, torch.float32)[..., None] * self.inv_freq
            if angles.dim() == 3:
                angles = angles[:, None]  # [B, 1, L, D/2]: the same positions for every head
        cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
        return _rotate(q, cos, sin), _rotate(k, cos, sin)


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    x_even, x_odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1).flatten(-2)


def rotate_half_pairing(head_dim: int) -> Tensor:
    """Index map p with ours[c] = theirs[p[c]] inside a head, from the rotate-half convention (pairs (j, j + D/2),
    used by MDLM, SEDD and FS-DFM) to ours ((2j, 2j + 1)). Permuting the q and k rows of a checkpoint by p gives
    the same attention scores, since q.k is unchanged when both are permuted alike."""
    half = torch.arange(head_dim // 2)
    return torch.stack([half, half + head_dim // 2], dim=1).flatten()


def rotate_half_inv_freq(head_dim: int, base: float = 10000.0) -> Tensor:
    """The ``inv_freq`` buffer rotate-half checkpoints store, computed as they compute it (1 / base^(2j/D))."""
    return 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
