"""Targets and losses of the student's masked tokens.

Teacher target at completion token k (the clean-filled sequence is the completion x0 itself):

    p_T(. | k) = p_AR(. | prompt, x0_<k)   = one causal forward over [prompt | x0_{< L}], read shifted by one.

Losses, a mean over the masked tokens of each sequence, then over the batch:

- forward KL(p_T || p_S) = sum_v p_T(v) (log p_T(v) - log p_S(v)) over the full vocabulary, or with ``top_k``
  only over the teacher's k most likely ids, with the full-vocabulary log-probabilities (not renormalised);
- cross-entropy -log p_S(x0_k) when the targets are the data.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def teacher_targets(causal_logits: Callable[[Tensor], Tensor], prompt: Tensor, x0: Tensor) -> Tensor:
    """Teacher logits [B, L, V]: at token k, the causal LM's prediction after [prompt | x0_<k]."""
    row = torch.cat([prompt, x0[:, :-1]], dim=1)
    return causal_logits(row)[:, prompt.shape[1] - 1:]


def sequence_mean(per_token: Tensor, positions: Tensor) -> Tensor:
    """Mean over the ``positions`` [B, L] of each sequence, then over the sequences that have any."""
    weight = positions.float()
    count = weight.sum(-1)
    per_sequence = (per_token * weight).sum(-1) / count.clamp_min(1.0)
    has_any = count > 0
    return per_sequence[has_any].mean() if has_any.any() else per_token.sum() * 0.0


def top_k_forward_kl(teacher_logits: Tensor, student_logits: Tensor, positions: Tensor,
                     top_k: int | None = None) -> Tensor:
    """KL(p_T || p_S) between two models' logits at the ``positions``, a mean per sequence (see the module
    docstring); ``top_k`` sums over the teacher's top k ids (None: all). The library's
    :func:`~lightning_tsdfm.losses.forward_kl` takes a target distribution instead, averaged over positions."""
    log_t = F.log_softmax(teacher_logits.float(), dim=-1)
    log_s = F.log_softmax(student_logits.float(), dim=-1)
    if top_k is not None:
        ids = teacher_logits.topk(top_k, dim=-1).indices
        log_t, log_s = log_t.gather(-1, ids), log_s.gather(-1, ids)
    return sequence_mean((log_t.exp() * (log_t - log_s)).sum(-1), positions)


def cross_entropy(student_logits: Tensor, x0: Tensor, positions: Tensor) -> Tensor:
    """-log p_S(x0_k) at the ``positions``, a mean per sequence then over the batch."""
    nll = F.cross_entropy(student_logits.float().flatten(0, 1), x0.flatten(), reduction="none").view_as(x0)
    return sequence_mean(nll, positions)
