"""The uniform-state NELBO with DUO's mean parameterisation, in continuous time and the library's time u (u = 0
noise, u = 1 data).

On the path z_u ~ kappa(u) delta(x1) + (1 - kappa(u)) / V the forward process moves a token to a uniform one at rate
kappa' / kappa, and the model's reverse step is the forward posterior with x1 replaced by the denoiser's
probabilities x_theta (:mod:`tsdfm_duo.posterior`). Per position, with a = V kappa, b = 1 - kappa,

    xbar = a onehot(x1) + b,   xbar_theta = a x_theta + b          (both sum to V),
    r_y = xbar_y / xbar_z,     r_theta_y = xbar_theta_y / xbar_theta_z,     z = z_u the noisy token,

the reverse rates are the forward rates times these ratios, and the NELBO's integrand is the KL rate between the
true and the model's reverse processes,

    l(u) = kappa' / (V kappa) * sum_y [r_theta_y - r_y log r_theta_y + r_y log r_y - r_y]  >= 0,

(the y = z term is 0), zero when x_theta = onehot(x1); E_u E_z l(u) plus the prior term bounds -log p(x1) per token.
Only two entries of r differ from 1 or from b / (a + b), so the sum is computed from sum_y log xbar_theta_y and two
gathers, without a second [B, L, V] tensor:

    sum_y (r_theta_y - r_y) = V / xbar_theta_z - V / xbar_z,
    sum_y r_y log r_theta_y = [b sum_y log xbar_theta_y - b V log xbar_theta_z
                               + a (log xbar_theta_x1 - log xbar_theta_z)] / xbar_z,
    sum_y r_y log r_y = (V - 1) c log c,  c = b / (a + b),    if z = x1;
                        ((a + b) / b) log((a + b) / b),         otherwise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def uniform_state_nelbo(logits: Tensor, x1: Tensor, x_t: Tensor, kappa: Tensor, d_kappa: Tensor) -> Tensor:
    """Per-position l(u) [B, L] (see the module docstring): ``logits`` [B, L, V] of x_theta, data ``x1`` and noisy
    tokens ``x_t`` [B, L], and kappa(u), d kappa / du per sequence [B]. Computed in the logits' float dtype (at
    least float32)."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    log_p = torch.log_softmax(logits.to(dtype), dim=-1)
    vocab = log_p.shape[-1]
    kappa = kappa.to(dtype)[:, None]
    a = vocab * kappa
    b = (1 - kappa).clamp_min(torch.finfo(dtype).eps)
    log_xbar_theta = torch.logaddexp(log_p + torch.log(a)[..., None], torch.log(b)[..., None])  # [B, L, V]
    at_z = log_xbar_theta.gather(-1, x_t[..., None]).squeeze(-1)
    at_x1 = log_xbar_theta.gather(-1, x1[..., None]).squeeze(-1)
    clean = x_t == x1
    xbar_z = torch.where(clean, a + b, b)
    rates = vocab * torch.exp(-at_z) - vocab / xbar_z
    cross = (b * (log_xbar_theta.sum(-1) - vocab * at_z) + a * (at_x1 - at_z)) / xbar_z
    c = b / (a + b)
    own = torch.where(clean, (vocab - 1) * c * torch.log(c), torch.log1p(a / b) / c)
    weight = d_kappa.to(dtype)[:, None] / (vocab * kappa)
    return weight * (rates - cross + own)


def prior_kl(kappa_0: float, vocab_size: int) -> float:
    """KL(kappa_0 delta(x1) + (1 - kappa_0) / V || Uniform(V)) per token: the NELBO's prior term at u = 0."""
    stay = kappa_0 + (1 - kappa_0) / vocab_size
    kl = stay * math.log(vocab_size * stay)
    if kappa_0 < 1:
        kl += (1 - stay) * math.log(1 - kappa_0)
    return kl
