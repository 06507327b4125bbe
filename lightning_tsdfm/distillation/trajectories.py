"""Trajectory teachers: the distillation target for one student step of size h, built from a short
trajectory of half steps. Every midpoint is a draw of the module's :class:`JumpPolicy` (the seam that
trajectory shaping replaces).

    Heun:  k1 = p(x_t, t, h/2);  m = jump(x_t, k1, t, h/2);  k2 = p(m, t + h/2, h/2);  target = (k1 + k2) / 2
    RK4:   k1 = p(x_t, t, h/2);  m1 = jump(x_t, k1, t, h/2);  k2 = p(m1, t + h/2, h/2)
           m2 = jump(x_t, k2, t, h/2);  k3 = p(m2, t + h/2, h/2);  m3 = jump(x_t, k3, t, h);  k4 = p(m3, t + h, h/2)
           target = (k1 + 2 k2 + 2 k3 + k4) / 6
(probability space; p is the posterior p(x1 | x, t, step), k1..k4 its values).

    Endpoint (one Heun midpoint, the law of the state it leads to instead of the average of two posteriors):
           with c = P(jump over h), b = P(jump over the second half), s(m) = 1 where m may still move and
           e(x) the one-hot of x over the V data tokens (zero for a mask), one student step gives
           E[e(x_{t+h})] = (1 - c) e(x_t) + c p, and two half steps give E_m[(1 - b s(m)) e(m) + b s(m) k2]; so
           target = ((1 - b s(m)) e(m) + b s(m) k2 - (1 - c) e(x_t)) / c, unbiased for the exact composition
           for one midpoint m. A shaped midpoint thus shapes the target's first half too, which Heun's k1 cannot.

    Endpoint, averaged (Rao-Blackwellised over the jump's K candidates m_1..m_K, kept with probabilities w_k):
           the first half's E_m[(1 - b s(m)) e(m)] is taken as sum_k w_k (1 - b s(m_k)) e(m_k) instead of at the kept
           m alone; the second half stays at the kept m. Same mean, less one-hot noise (blind, K = 1: the endpoint).
    Endpoint over n sub-steps (``substeps`` n, a power of two; n = 2 is the above): x_t takes n - 1 jumps of size
           h_s = max(h / n, min_step) (fewer where h / n < min_step), and the target is the law of the state the last
           midpoint m leads to over the final sub-step, the same formula with b = P(jump over h_s from t + h - h_s).
           Every midpoint is a draw of the jump policy, so a shaped jump shapes all but the last h_s of the target
           (half of it at n = 2); only the averaged target's last midpoint is averaged over.
    Both endpoint targets are distributions on the mask source only: where a data token may jump (uniform source),
    a midpoint that left x_t's token puts -(1 - c) / c on it, and cross-entropy against a signed target is
    unbounded below (a student trained on it collapses), so :func:`check_trajectory` refuses them there.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from lightning_tsdfm.conditioning import for_rows
from lightning_tsdfm.jumps import Candidates, JumpPolicy
from lightning_tsdfm.paths import MixturePath

Posterior = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x [B, L], t [B], h [B]) -> p(x1 | x, t, h) [B, L, V]


def heun_target(posterior: Posterior, jump: JumpPolicy, path: MixturePath, x_t: Tensor, t: Tensor, h: Tensor,
                generator: Optional[torch.Generator] = None) -> Tensor:
    half = h / 2
    k1 = posterior(x_t, t, half)
    midpoint = jump(x_t, k1, t, half, path, generator)
    k2 = posterior(midpoint, t + half, half)
    return (k1 + k2) / 2


def rk4_target(posterior: Posterior, jump: JumpPolicy, path: MixturePath, x_t: Tensor, t: Tensor, h: Tensor,
               generator: Optional[torch.Generator] = None) -> Tensor:
    half = h / 2
    k1 = posterior(x_t, t, half)
    k2 = posterior(jump(x_t, k1, t, half, path, generator), t + half, half)
    k3 = posterior(jump(x_t, k2, t, half, path, generator), t + half, half)
    k4 = posterior(jump(x_t, k3, t, h, path, generator), t + h, half)
    return (k1 + 2 * k2 + 2 * k3 + k4) / 6


def endpoint_target(posterior: Posterior, jump: JumpPolicy, path: MixturePath, x_t: Tensor, t: Tensor, h: Tensor,
                    generator: Optional[torch.Generator] = None, substeps: int = 2, min_step: float = 0.0) -> Tensor:
    drawn, t_last, h_last = _last_midpoint(posterior, jump, path, x_t, t, h, generator, substeps, min_step, False)
    return _endpoint(posterior, path, x_t, t, h, drawn, t_last, h_last)


def endpoint_averaged_target(posterior: Posterior, jump: JumpPolicy, path: MixturePath, x_t: Tensor, t: Tensor,
                             h: Tensor, generator: Optional[torch.Generator] = None, substeps: int = 2,
                             min_step: float = 0.0) -> Tensor:
    if not hasattr(jump, "draw_candidates"):
        raise TypeError(f"trajectory 'endpoint_averaged' needs a jump policy that hands over its candidates "
                        f"(draw_candidates: BlindJump, GuidedJump); {jump!r} does not: use trajectory 'endpoint'.")
    drawn, t_last, h_last = _last_midpoint(posterior, jump, path, x_t, t, h, generator, substeps, min_step, True)
    return _endpoint(posterior, path, x_t, t, h, drawn, t_last, h_last)


def _last_midpoint(posterior: Posterior, jump: JumpPolicy, path: MixturePath, x_t: Tensor, t: Tensor, h: Tensor,
                   generator: Optional[torch.Generator], substeps: int, min_step: float,
                   averaged: bool) -> tuple[Candidates, Tensor, Tensor]:
    """x_t after n_b - 1 jumps of size h_s = max(h / substeps, min_step) (n_b = h / h_s sub-steps per sequence), as
    the last jump's candidates; its time t + (n_b - 1) h_s and h_s [B]. A sequence whose midpoints are done sits out
    the remaining jumps (a conditioned jump keeps the known tokens of the live ones: :func:`for_rows`)."""
    h_sub = torch.minimum(torch.clamp_min(h / substeps, min_step), h / 2)
    midpoints = torch.round(h / h_sub).long() - 1  # n_b - 1 >= 1
    x, last = x_t, None
    for k in range(int(midpoints.max())):
        live = k < midpoints
        x_live, t_live, h_live = x[live], t[live] + k * h_sub[live], h_sub[live]
        probs = posterior(x_live, t_live, h_live)
        live_jump = for_rows(jump, live)
        drawn = (live_jump.draw_candidates(x_live, probs, t_live, h_live, path, generator) if averaged
                 else Candidates.single(live_jump(x_live, probs, t_live, h_live, path, generator)))
        if last is None:  # every sequence takes the first jump; later ones overwrite the live sequences' copies
            last = drawn if k == int(midpoints.max()) - 1 else Candidates(
                drawn.kept.clone(), drawn.states.clone(), drawn.keep_probabilities.clone())
        else:
            last.kept[live], last.states[:, live], last.keep_probabilities[:, live] = (
                drawn.kept, drawn.states, drawn.keep_probabilities)
        x = last.kept
    return last, t + midpoints * h_sub, h_sub


def _endpoint(posterior: Posterior, path: MixturePath, x_t: Tensor, t: Tensor, h: Tensor, drawn: Candidates,
              t_last: Tensor, h_last: Tensor) -> Tensor:
    """((sum_k w_k (1 - b s(m_k)) e(m_k)) + b s(m) k2(m) - (1 - c) e(x_t)) / c for the kept last midpoint m, which
    takes the final sub-step h_last from t_last."""
    k2 = posterior(drawn.kept, t_last, h_last)
    vocab = k2.shape[-1]
    c = path.jump_probability(t, h)[:, None, None]
    b_last = path.jump_probability(t_last, h_last)[:, None]  # [B, 1]
    first_weights = drawn.keep_probabilities * (1 - b_last * path.source.unsettled(drawn.states))  # [K, B, L]
    first = torch.zeros(*x_t.shape, vocab + 1, device=x_t.device)
    first.scatter_add_(-1, drawn.states.permute(1, 2, 0), first_weights.permute(1, 2, 0).float())
    b = b_last[..., None] * path.source.unsettled(drawn.kept)[..., None]
    return (first[..., :vocab] + b * k2 - (1 - c) * _data_one_hot(x_t, vocab)) / c


def _data_one_hot(x: Tensor, vocab: int) -> Tensor:
    """e(x) [B, L, V]: the one-hot of each data token, zero for ids >= V (the mask)."""
    return torch.nn.functional.one_hot(x.clamp_max(vocab), vocab + 1)[..., :vocab].float()


TRAJECTORIES = {"heun": heun_target, "rk4": rk4_target, "endpoint": endpoint_target,
                "endpoint_averaged": endpoint_averaged_target}
#: the targets that are distributions only where a revealed token stays (the mask source)
MASK_SOURCE_ONLY = ("endpoint", "endpoint_averaged")


def check_trajectory(trajectory: str, source: str, substeps: int = 2) -> None:
    """A clear error for an unknown trajectory, for an endpoint target on a source whose tokens may jump, or for
    sub-steps that are not a power of two >= 2 or that a target with fixed midpoints (Heun, RK4) cannot take."""
    if trajectory not in TRAJECTORIES:
        raise ValueError(f"Unknown trajectory {trajectory!r}: choose one of {sorted(TRAJECTORIES)}.")
    if trajectory in MASK_SOURCE_ONLY and source != "mask":
        raise ValueError(f"trajectory {trajectory!r} needs a mask-source teacher; this teacher's source is {source!r}, "
                         "whose tokens may jump, which makes the endpoint target signed (cross-entropy against it is "
                         "unbounded below): use trajectory 'heun' or 'rk4'.")
    if substeps < 2 or substeps & (substeps - 1):
        raise ValueError(f"substeps must be a power of two >= 2 (the student's step sizes are dyadic), got {substeps}.")
    if substeps != 2 and trajectory not in MASK_SOURCE_ONLY:
        raise ValueError(f"substeps={substeps} applies to the endpoint targets only; trajectory {trajectory!r} has fixed "
                         f"midpoints: use trajectory 'endpoint' or 'endpoint_averaged', or substeps=2.")
