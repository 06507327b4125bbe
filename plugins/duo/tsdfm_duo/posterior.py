"""DUO's ancestral step: the forward posterior of the uniform-state path with x1 replaced by the denoiser's x_theta.

From z_t to z_s, t < s in the library's time (kappa_t < kappa_s), a token of z_s is kept with probability
rho = kappa_t / kappa_s and redrawn uniformly otherwise, so by Bayes, for a known x1,

    q(z_s = y | z_t, x1) = q(z_t | z_s = y) q(z_s = y | x1) / q(z_t | x1),
    q(z_t | z_s = y) = rho delta(y, z_t) + (1 - rho) / V,   q(z_s = y | x1) = kappa_s delta(y, x1) + (1 - kappa_s) / V.

Numerator and denominator are linear in onehot(x1); the model's kernel puts x_theta in its place in both:

    p(z_s = y | z_t) = [rho delta(y, z_t) + (1 - rho) / V] [kappa_s x_theta_y + (1 - kappa_s) / V]
                       / [kappa_t x_theta_{z_t} + (1 - kappa_t) / V],

which sums to one over y. At kappa_s = 1 (the last step) it is x_theta_y q(z_t | x1 = y) / sum: denoising. With the
exact x_theta of a language (:func:`~tsdfm_duo.nelbo.uniform_state_nelbo` is minimised at x_theta_y proportional to
p(x1 = y | z_t) / q(z_t | x1 = y), the posterior given the other positions) the kernel is the exact posterior of
each position given the others.
"""

from __future__ import annotations

import torch
from torch import Tensor


def ancestral_kernel(probs: Tensor, x_t: Tensor, kappa_t: Tensor, kappa_s: Tensor) -> Tensor:
    """p(z_s | z_t) [B, L, V] from x_theta ``probs`` [B, L, V], tokens ``x_t`` [B, L] and kappa at both times [B]
    (0 <= kappa_t <= kappa_s <= 1, kappa_s > 0), in float64."""
    probs = probs.double()
    vocab = probs.shape[-1]
    kappa_t = kappa_t.double().to(probs.device)[:, None, None]
    kappa_s = kappa_s.double().to(probs.device)[:, None, None]
    rho = kappa_t / kappa_s
    back = rho * torch.nn.functional.one_hot(x_t, vocab).double() + (1 - rho) / vocab  # q(z_t | z_s = y)
    ahead = kappa_s * probs + (1 - kappa_s) / vocab  # q(z_s = y | x_theta)
    evidence = kappa_t * probs.gather(-1, x_t[..., None]) + (1 - kappa_t) / vocab  # q(z_t | x_theta)
    kernel = back * ahead / evidence
    return kernel / kernel.sum(-1, keepdim=True)  # one up to rounding
