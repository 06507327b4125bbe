"""Multi-head attention kernels: torch SDPA (default, any device) or flash-attn (optional, CUDA only).

flash-attn is never a hard import: asking for ``flash`` where it is missing, or on CPU tensors, falls back
to SDPA with a one-time warning, so every config runs on a laptop.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Backend = Literal["sdpa", "flash"]

try:  # optional extra: pip install lightning-tsdfm[flash]
    from flash_attn import flash_attn_func as _flash_attn_func
except ImportError:  # pragma: no cover - depends on the machine
    _flash_attn_func = None

_warned = False


def flash_available() -> bool:
    return _flash_attn_func is not None and torch.cuda.is_available()


def attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False, backend: Backend = "sdpa",
              attn_mask: Tensor | None = None) -> Tensor:
    """softmax(q k^T / sqrt(d) + log M) v for q, k, v of shape [B, H, L, D]; returns [B, H, L, D].

    ``attn_mask`` (bool, True where query i may attend to key j; [L, L], [B, L, L] or [B, H, L, L]) restricts the
    keys beyond ``causal``; with a mask the flash backend falls back to SDPA (flash-attn takes no mask).
    """
    global _warned
    if attn_mask is not None:
        return _masked_sdpa(q, k, v, attn_mask, causal)
    if backend == "flash":
        if _flash_attn_func is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
            out = _flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=causal)
            return out.transpose(1, 2)
        if not _warned:
            warnings.warn(
                "attention backend 'flash' needs flash-attn, a CUDA device and fp16/bf16 activations; "
                "falling back to torch SDPA (install the [flash] extra and train with precision=bf16-mixed).",
                stacklevel=2,
            )
            _warned = True
    elif backend != "sdpa":
        raise ValueError(f"Unknown attention backend {backend!r}: choose 'sdpa' or 'flash'.")
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _masked_sdpa(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor, causal: bool) -> Tensor:
    """SDPA with a boolean visibility mask (and the causal triangle when ``causal``)."""
    mask = attn_mask.to(device=q.device, dtype=torch.bool)
    if mask.dim() == 3:
        mask = mask[:, None]  # one mask for every head
    if causal:
        length_q, length_k = q.shape[-2], k.shape[-2]
        mask = mask & torch.ones(length_q, length_k, dtype=torch.bool, device=q.device).tril()
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
