"""Sequences of any length N from a model of length L: semi-autoregressive generation in windows of L positions.

Window k covers positions [s_k, s_k + L), s_k = k S for a stride S < L (the last window ends at N): it is sampled
conditioned on every position already decided in it, the L - S tokens that the windows before generated (the tail of
what came before) and any known tokens of the whole sequence (a prompt, a template) that fall in it, and adds S new
tokens. A window whose every position is decided is skipped (a prompt longer than L: generation starts where its tail
leaves room). With N <= L it is one window of L positions, cut to N.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.errors import UserError

#: a model's conditioned sampler: known tokens of B windows of L positions -> samples [B, L] that keep them
WindowSampler = Callable[[Given], Tensor]


def default_stride(seq_len: int) -> int:
    """S = L / 2: each window conditions on half of its positions and generates the other half."""
    return max(seq_len // 2, 1)


def window_starts(length: int, seq_len: int, stride: int) -> list[int]:
    """s_0 = 0, s_k = k S while s_k + L < N, and the last window ending at N: [0] when N <= L."""
    if length <= seq_len:
        return [0]
    if not 1 <= stride < seq_len:
        raise UserError(f"The stride (new tokens a window) must be in [1, {seq_len - 1}] for a model of length "
                        f"{seq_len}, so that each window keeps L - stride tokens of what came before; got {stride}.")
    return list(range(0, length - seq_len, stride)) + [length - seq_len]


def sample_long(sample_window: WindowSampler, given: Given, seq_len: int, stride: int | None = None) -> Tensor:
    """Samples [B, N] (N = ``given.length``) that keep the known tokens of ``given``, window by window (see the module
    docstring); ``stride`` S defaults to :func:`default_stride`."""
    length = given.length
    if length <= seq_len:
        free = Given.nothing(len(given), seq_len - length, given.tokens.device)
        padded = Given(torch.cat([given.tokens, free.tokens], 1), torch.cat([given.known, free.known], 1))
        return sample_window(padded)[:, :length]
    tokens, decided = given.tokens.clone(), given.known.clone()
    for start in window_starts(length, seq_len, stride or default_stride(seq_len)):
        window = Given(tokens[:, start:start + seq_len], decided[:, start:start + seq_len])
        if not bool(window.known.all()):
            tokens[:, start:start + seq_len] = sample_window(window).to(tokens.device)
        decided[:, start:start + seq_len] = True
    return tokens
