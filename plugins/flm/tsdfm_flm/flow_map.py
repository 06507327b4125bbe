"""The flow map of FLM's probability-flow ODE and the semigroup identity FMLM distils.

On the one-hot interpolant the ODE's velocity at (x, gamma) is (D(x) - x) / (1 - gamma), D = E[onehot(x1) | x],
so one Euler step from gamma_s to gamma_t is

    x + (gamma_t - gamma_s)(D - x)/(1 - gamma_s) = (1 - gamma_t)/(1 - gamma_s) x + (gamma_t - gamma_s)/(1 - gamma_s) D,

a convex combination of x and D. The exact flow map X_{s,t} has the same form with a two-time denoiser
delta_{s,t}(x) on the simplex in place of D (delta_{s,s} = D_s):

    X_{s,t}(x) = (1 - gamma_t)/(1 - gamma_s) x + (gamma_t - gamma_s)/(1 - gamma_s) delta_{s,t}(x).

Semigroup: X_{u,t}(X_{s,u}(x)) = X_{s,t}(x) for s <= u <= t iff

    delta_{s,t}(x) = lambda delta_{s,u}(x) + (1 - lambda) delta_{u,t}(X_{s,u}(x)),
    lambda = (1 - gamma_t)(gamma_u - gamma_s) / ((1 - gamma_u)(gamma_t - gamma_s))  in [0, 1], 0 at gamma_t = 1.
"""

from __future__ import annotations

from torch import Tensor

from tsdfm_flm.interpolant import per_sequence


def euler_step(x: Tensor, denoised: Tensor, gamma_s: Tensor, gamma_t: Tensor) -> Tensor:
    """x + (gamma_t - gamma_s) (D - x) / (1 - gamma_s): one Euler step of the ODE (gamma_s < 1; [B] gammas)."""
    g_s, g_t = per_sequence(gamma_s, x), per_sequence(gamma_t, x)
    return x + (g_t - g_s) * (denoised - x) / (1 - g_s)


def flow_map(x: Tensor, delta: Tensor, gamma_s: Tensor, gamma_t: Tensor) -> Tensor:
    """X_{s,t}(x) = (1 - gamma_t)/(1 - gamma_s) x + (gamma_t - gamma_s)/(1 - gamma_s) delta (gamma_s < 1)."""
    g_s, g_t = per_sequence(gamma_s, x), per_sequence(gamma_t, x)
    return (1 - g_t) / (1 - g_s) * x + (g_t - g_s) / (1 - g_s) * delta


def semigroup_weight(gamma_s: Tensor, gamma_u: Tensor, gamma_t: Tensor) -> Tensor:
    """lambda = (1 - gamma_t)(gamma_u - gamma_s) / ((1 - gamma_u)(gamma_t - gamma_s)), clamped to [0, 1]; where
    gamma_t = gamma_s (no step) any weight composes exactly and 1 is returned."""
    span = gamma_t - gamma_s
    weight = (1 - gamma_t) * (gamma_u - gamma_s) / ((1 - gamma_u).clamp_min(1e-12) * span.clamp_min(1e-12))
    return weight.where(span > 1e-12, 1.0).clamp(0.0, 1.0)


def semigroup_target(delta_su: Tensor, delta_ut_at_midpoint: Tensor, weight: Tensor) -> Tensor:
    """lambda delta_{s,u}(x) + (1 - lambda) delta_{u,t}(X_{s,u}(x)): the delta_{s,t} that makes the two steps one."""
    w = per_sequence(weight, delta_su)
    return w * delta_su + (1 - w) * delta_ut_at_midpoint
