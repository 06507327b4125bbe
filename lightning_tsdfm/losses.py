"""Training losses of a denoiser p(x1 | x_t, t) on the mixture path.

- cross-entropy: -log p(x1^i | x_t, t), averaged over the positions that can still change;
- distillation KLs between a student softmax(logits) and a target q, in either direction, averaged over the
  positions that can still change (only those are computed: SUBS carries revealed tokens over with -inf logits);
- generalized KL (Shaul et al., mixture paths), per position i with lambda = kappa'(t) / (1 - kappa(t)):

      l_i = lambda * [ delta(x1^i, x_t^i) - p(x_t^i) - (1 - delta(x1^i, x_t^i)) * log p(x1^i) ]  >= 0

  Integrated over t ~ U(0, 1) it bounds the negative log-likelihood (NELBO, nats per token). With the mask
  source it reduces to the MDLM continuous-time NELBO: lambda * -log p(x1^i) on masked positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_tsdfm.paths import MixturePath


def masked_cross_entropy(logits: Tensor, x1: Tensor, weight: Tensor) -> Tensor:
    """Mean over positions with weight>0 of -log p(x1); logits [B, L, V], weight [B, L] (bool or float)."""
    nll = F.cross_entropy(logits.float().flatten(0, 1), x1.flatten(), reduction="none").view_as(x1)
    return weighted_mean(nll, weight)


def weighted_mean(per_position: Tensor, weight: Tensor) -> Tensor:
    """sum_i w_i l_i / max(sum_i w_i, 1) of per-position values l [B, L] and weights w [B, L] (bool or float)."""
    weight = weight.float()
    return (per_position * weight).sum() / weight.sum().clamp_min(1.0)


def forward_kl(target: Tensor, logits: Tensor, positions: Tensor) -> Tensor:
    """Mean over the positions [B, L] (bool) of KL(q || p) = sum_v q_v (log q_v - log p_v), p = softmax(logits); 0 if none."""
    log_p, q = F.log_softmax(logits[positions].float(), dim=-1), target[positions].float()
    return _mean((q * (q.clamp_min(1e-30).log() - log_p)).sum(-1))


def mixture_forward_kl(target: Tensor, logits: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """KL from a target to a mixture of M factorised posteriors p_m = softmax(logits[m]) [M, B, L, V], per sequence b:

        a_mb = sum_{i in positions_b} sum_v q_iv log p_miv,     loss = sum_b (sum_i sum_v q log q - LME_m a_mb) / n,

    LME_m a = log mean_m exp(a_m), n = the number of positions. a_mb is code m's log-likelihood of the target's
    draws at their mean, so LME_m a_mb bounds the mixture's expected log-likelihood of them from below (Jensen), and
    each code is pulled toward the targets it explains best. For M = 1 it is :func:`forward_kl`. Returns the loss
    and the codes' responsibilities softmax_m(a_mb) [M, B] (detached)."""
    weight = positions.float()
    log_p = F.log_softmax(logits.float(), dim=-1).masked_fill(~positions[..., None], 0.0)  # SUBS's -inf off positions
    q = target.float().masked_fill(~positions[..., None], 0.0)
    a = ((q * log_p).sum(-1) * weight).sum(-1)  # [M, B]
    neg_entropy = (q * q.clamp_min(1e-30).log()).sum((-1, -2))  # [B]
    lme = torch.logsumexp(a, dim=0) - math.log(a.shape[0])
    return (neg_entropy - lme).sum() / weight.sum().clamp_min(1.0), torch.softmax(a.detach(), dim=0)


def reverse_kl(logits: Tensor, target: Tensor, positions: Tensor) -> Tensor:
    """Mean over the positions [B, L] (bool) of KL(p || q) = sum_v p_v (log p_v - log q_v), p = softmax(logits); 0 if none."""
    log_p, log_q = F.log_softmax(logits[positions].float(), dim=-1), target[positions].float().clamp_min(1e-30).log()
    return _mean((log_p.exp() * (log_p - log_q)).sum(-1))


def _mean(per_position: Tensor) -> Tensor:
    return per_position.sum() / max(per_position.numel(), 1)


def generalized_kl(logits: Tensor, x1: Tensor, x_t: Tensor, t: Tensor, path: MixturePath) -> Tensor:
    """Per-position generalized KL [B, L] (see module docstring); the mean over positions and t ~ U(0,1) is the NELBO."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    vocab = log_p.shape[-1]
    log_p_x1 = log_p.gather(-1, x1[..., None]).squeeze(-1)
    # p(x_t): zero where x_t is the mask id (the denoiser never predicts it)
    in_vocab = x_t < vocab
    p_xt = log_p.gather(-1, x_t.clamp_max(vocab - 1)[..., None]).squeeze(-1).exp() * in_vocab
    same = (x_t == x1).float()
    sched = path.scheduler
    lam = (sched.d_kappa(t) / (1.0 - sched.kappa(t)).clamp_min(1e-6))[:, None]
    return lam * (same - p_xt - (1.0 - same) * log_p_x1)
