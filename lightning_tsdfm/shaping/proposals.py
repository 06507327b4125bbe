"""Proposals: what an energy over whole sequences scores for a jump's K candidates.

Candidate k reveals the tokens y_k at the positions that move; the positions that stay open (unsettled and not
moving) are completed by M filler draws f_m ~ q(. | x_t), the denoiser's own factorised law, shared by the K
candidates. The energy of candidate k is the estimated marginal over the fillers,

    E_k = -log (1/M) sum_m p(x_t, y_k, f_m) / q(f_m | x_t),

an unbiased estimate of p(x_t, y_k) = sum_f p(x_t, y_k, f) inside the log, whose variance falls as 1/M: the
candidates are then ranked by what they reveal, not by how well the one shared filler happens to suit them.
M = 1 is the single shared draw, whose q(f | x_t) is common to every candidate and left out (the per-token
energies pass through unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Energies = Callable[[Tensor, Tensor], Tensor]  # (x [N, L], t [N]) -> per-token energies [N, L]


@dataclass
class Proposals:
    """Whole draws x1_hat [K, M, B, L] (candidate k's revealed tokens completed by filler m) and the fillers' log
    q(f_m | x_t): [M, B] for fillers shared by the candidates (None allowed for one shared filler, whose q is common
    to every candidate), or [K, M, B] for fillers drawn per candidate."""

    drawn: Tensor
    filler_log_q: Tensor | None

    @classmethod
    def complete(cls, revealed: Tensor, moves: Tensor, fillers: Tensor, open_positions: Tensor, x_t: Tensor,
                 log_probs: Tensor) -> Proposals:
        """Candidates' revealed tokens [K, B, L] where ``moves`` [B, L], each filler [M, B, L] where
        ``open_positions`` [B, L], x_t elsewhere; ``log_probs`` [B, L, V]: the (tempered) log q the fillers were
        drawn from."""
        filled = torch.where(open_positions, fillers, x_t)  # [M, B, L]
        drawn = torch.where(moves, revealed[:, None], filled[None])  # [K, M, B, L]
        log_q = log_probs.expand(len(fillers), -1, -1, -1).gather(-1, fillers[..., None]).squeeze(-1)
        return cls(drawn, torch.where(open_positions, log_q, 0.0).sum(-1))

    def energies(self, energy: Energies, t: Tensor) -> Tensor:
        """Per-token energies [K, B, L] of the K candidates at times ``t`` [B]: the energy's own for M = 1; else E_k
        spread evenly over the L positions (sums and means over positions are E_k's)."""
        k, m, b, n = self.drawn.shape
        per_token = energy(self.drawn.reshape(k * m * b, n), t.repeat(k * m)).reshape(k, m, b, n).float()
        if m == 1 and (self.filler_log_q is None or self.filler_log_q.dim() == 2):  # one filler shared by every k
            return per_token[:, 0]
        log_weights = -per_token.double().sum(-1) - self.filler_log_q.double()  # [K, M, B] ([M, B] broadcast)
        log_marginal = torch.logsumexp(log_weights, dim=1) - math.log(m)  # [K, B]
        return (-log_marginal / n).float()[..., None].expand(k, b, n)
