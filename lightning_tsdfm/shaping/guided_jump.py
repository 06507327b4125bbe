"""GuidedJump: the blind jump with K candidates, of which the energy compass keeps one.

The K candidates share the positions that move (the blind draw of the move mask, so the state stays on the
path's schedule kappa; through a next-state kernel, the positions candidate 0 moved) and differ in the tokens drawn
there: candidate 0 is exactly the blind jump, drawn with the caller's generator; candidates 1..K-1 use the shaper's
own generator, so the caller's random stream is consumed as in blind distillation. A sequence whose jump starts
outside the selection's shaping window (``shape_from`` <= t < ``shape_until``) keeps its blind jump: no candidates are
drawn for it and the compass does not score it. The compass scores all K candidates at time t + h in one batched forward; a :class:`SelectionPolicy` picks per sequence
(or per token), given also each candidate's log proposal ratio log q(x_k | x_t) - log p(x_t | x_k) (the draw's
probability over the noising probability).

An energy over whole proposals (``scores="proposal"``: a causal LM, the sequence oracle) scores instead each
candidate's full draw x1_hat_k: its own tokens where it moves and, where nothing moves, draws shared by all K
candidates (candidate 0's), so the candidates differ only where they reveal. Its log proposal ratio is
log q(y_k | x_t), the probability of the moving tokens alone: the shared draws cancel between candidates. With
``filler_draws`` M > 1 the open positions are filled M times and the energy is the estimated marginal over the
fillers (:class:`~lightning_tsdfm.shaping.proposals.Proposals`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump, Candidates, per_sequence, sample_categorical, temper, temper_moves
from lightning_tsdfm.paths import MixturePath
from lightning_tsdfm.shaping.proposals import Energies, Proposals
from lightning_tsdfm.shaping.selection import SelectionPolicy, gather_candidates


class ShapingStatistics:
    """What the jumps of one training step did: how many were asked of the policy (``calls``, blind ones included:
    K = 1, or outside the shaping window) and, over the ``jumps`` that selected, the means of the kept candidate's energy
    (``energy_chosen``), of every candidate's (``energy_candidates``) and of the fraction of sequences whose kept state
    is not the blind draw, candidate 0 (``changed_fraction``). Each selection's three values stay on the jumps' device:
    :meth:`means` reads them back at once, so a jump never waits for the device."""

    def __init__(self) -> None:
        self.calls = 0
        self._selections: list[tuple[Tensor, Tensor, Tensor]] = []

    @property
    def jumps(self) -> int:
        """The jumps that selected among K > 1 candidates."""
        return len(self._selections)

    def add(self, sequence_energy: Tensor, chosen: Tensor, candidates: Tensor, kept: Tensor) -> None:
        """One selection: per-sequence energies of the candidates [K, B] and of the kept ones [B], the candidates
        [K, B, L] and the kept states [B, L]."""
        changed = (kept != candidates[0]).any(-1).float().mean()
        self._selections.append((chosen.detach().mean(), sequence_energy.detach().mean(), changed))

    def means(self) -> dict[str, float]:
        """The three means over the step's selections (0 without any), read from the device in one transfer."""
        n = max(self.jumps, 1)
        values = torch.cat([value.reshape(1) for selection in self._selections for value in selection]).tolist() \
            if self._selections else []
        chosen, candidates, changed = (sum(values[i::3], 0.0) for i in range(3))
        return {"energy_chosen": chosen / n, "energy_candidates": candidates / n, "changed_fraction": changed / n}


class GuidedJump:
    """x_{t+h} = the selected one of K candidate blind jumps (or transitions). K = 1 is the blind jump."""

    def __init__(self, energies: Energies, num_candidates: int, selection: SelectionPolicy,
                 blind: BlindJump | None = None, scores: Literal["state", "proposal"] = "state",
                 filler_draws: int = 1, generator: torch.Generator | None = None) -> None:
        if num_candidates < 1:
            raise ValueError(f"num_candidates (K) must be >= 1, got {num_candidates}.")
        if filler_draws < 1:
            raise ValueError(f"filler_draws (M) must be >= 1, got {filler_draws}.")
        if scores not in ("state", "proposal"):
            raise ValueError(f"scores must be 'state' (x_{{t+h}}) or 'proposal' (whole draws x1_hat), got {scores!r}.")
        self.energies = energies
        self.scores = scores
        self.num_candidates = num_candidates
        self.filler_draws = filler_draws
        self.selection = selection
        self.blind = blind or BlindJump()
        self.generator = generator  # draws candidates 1..K-1 and the selection; the shaper's, set by begin_step
        self.statistics = ShapingStatistics()

    @property
    def calls(self) -> int:
        """Jumps asked of this policy since the step began (K = 1 included)."""
        return self.statistics.calls

    def begin_step(self, generator: torch.Generator | None) -> None:
        """Start a training step: its candidates 1..K-1 and selections draw from ``generator``, its statistics anew."""
        self.generator = generator
        self.statistics = ShapingStatistics()

    def end_step(self) -> ShapingStatistics:
        """End the training step: the statistics of its jumps (the next step's start empty)."""
        statistics, self.statistics = self.statistics, ShapingStatistics()
        return statistics

    def __call__(self, x_t, probs, t, h, path: MixturePath, generator=None):
        t, h = _per_sequence(t, h, x_t)
        blind, inside, proposal = self._propose_inside(x_t, probs, t, h, path, generator)
        if proposal is None:
            return blind
        kept = blind.clone()
        kept[inside] = self.select(proposal[0], t[inside], h[inside], *proposal[1:])
        return kept

    def draw_candidates(self, x_t, probs, t, h, path: MixturePath, generator=None) -> Candidates:
        """The K candidate jumps [K, B, L], the kept one and the law it was drawn from (the selection's keep
        probabilities, float64); a sequence outside the shaping window has K copies of its blind jump, the first kept
        with probability one, so every jump of a run hands over K candidates (K = 1: the blind jump alone)."""
        t, h = _per_sequence(t, h, x_t)
        blind, inside, proposal = self._propose_inside(x_t, probs, t, h, path, generator)
        if self.num_candidates == 1:
            return Candidates.single(blind)
        kept, states = blind.clone(), blind.expand(self.num_candidates, -1, -1).clone()
        keep = torch.zeros(states.shape, dtype=torch.float64, device=states.device)
        keep[0] = 1.0
        if proposal is not None:
            candidates, log_proposal, scored = proposal
            kept[inside], energies = self.scored_selection(candidates, t[inside], h[inside], log_proposal, scored)
            states[:, inside] = candidates
            keep[:, inside] = self.selection.keep_probabilities(energies, t[inside], log_proposal).double()
        return Candidates(kept, states, keep)

    def _unshaped(self, t: Tensor) -> bool:
        """K = 1, or every sequence's jump starts outside the selection's shaping window: the blind jump alone."""
        return self.num_candidates == 1 or not bool(self.selection.shapes(t).any())

    def propose(self, x_t, probs, t, h, path: MixturePath, generator) -> tuple[Tensor, Tensor | None, Tensor | Proposals]:
        """K blind jumps sharing the moves [K, B, L] (candidate 0 with the caller's generator), their log proposal
        ratios [K, B] and what the energy scores (the states [K, B, L], or the whole proposals x1_hat as
        :class:`Proposals`); the blind jump alone and None where :meth:`_unshaped`."""
        self.statistics.calls += 1
        first_tokens, moves = self._first_draw(x_t, probs, t, h, path, generator)
        if self._unshaped(t):
            blind = torch.where(moves, first_tokens, x_t)[None]
            return blind, None, blind
        return self._candidates(x_t, probs, t, h, path, first_tokens, moves)

    def _propose_inside(self, x_t, probs, t, h, path: MixturePath, generator):
        """The blind jump of every sequence [B, L] (candidate 0: the caller's generator, as blind distillation draws
        it), which sequences start inside the shaping window [B], and :meth:`propose`'s candidates, log proposal ratios
        and scored states of those alone (None where none is inside, or K = 1): a jump outside the window costs no
        candidate draw and no energy forward."""
        self.statistics.calls += 1
        first_tokens, moves = self._first_draw(x_t, probs, t, h, path, generator)
        blind = torch.where(moves, first_tokens, x_t)
        inside = self.selection.shapes(t) if self.num_candidates > 1 else torch.zeros_like(t, dtype=torch.bool)
        if not inside.any():
            return blind, inside, None
        parts = (x_t, probs, t, h, first_tokens, moves)
        x_in, probs_in, t_in, h_in, first_in, moves_in = parts if inside.all() else (a[inside] for a in parts)
        return blind, inside, self._candidates(x_in, probs_in, t_in, h_in, path, first_in, moves_in)

    def _first_draw(self, x_t, probs, t, h, path: MixturePath, generator) -> tuple[Tensor, Tensor]:
        """Candidate 0's token draws and which positions move [B, L], from the caller's generator."""
        return self.blind.draw_tokens(probs, generator), self.blind.draw_moves(x_t, t, h, path, generator)

    def _candidates(self, x_t, probs, t, h, path: MixturePath, first_tokens: Tensor, moves: Tensor):
        """:meth:`propose`'s K candidates sharing ``moves``, candidate 0 drawing ``first_tokens``."""
        tokens = torch.cat([first_tokens.unsqueeze(0),  # [K, B, L]; only where a token moves do the candidates differ
                            self._draws_where(probs, moves, self.num_candidates - 1, first_tokens)])
        candidates = torch.where(moves, tokens, x_t)
        log_probs = temper(probs.double(), self.blind.temperature).log()
        drawn = log_probs.expand(self.num_candidates, -1, -1, -1)
        log_q = torch.where(moves, drawn.gather(-1, tokens[..., None]).squeeze(-1), 0.0).sum(-1)  # [K, B]
        if self.scores == "proposal":  # settled positions are x1 already; the open ones take the shared fillers
            open_positions = path.source.unsettled(x_t) & ~moves
            fillers = torch.cat([first_tokens.unsqueeze(0),
                                 self._draws_where(probs, open_positions, self.filler_draws - 1, first_tokens)])
            return candidates, log_q, Proposals.complete(tokens, moves, fillers, open_positions, x_t, log_probs)
        return candidates, log_q - path.log_noising(candidates, x_t, t, (t + h).clamp(max=1.0)), candidates

    def _draws_where(self, probs: Tensor, positions: Tensor, count: int, others: Tensor) -> Tensor:
        """``count`` draws [count, B, L] from ``probs`` (the shaper's generator) at ``positions`` [B, L] alone, ``others``
        elsewhere: a jump's candidates read their own tokens only where they move, and its fillers where it leaves
        positions open, so only those are drawn (a draw costs O(V) per position)."""
        draws = others.unsqueeze(0).repeat(count, 1, 1)
        if count and positions.any():
            draws[:, positions] = self.blind.draw_tokens(probs[positions].unsqueeze(0).expand(count, -1, -1),
                                                         self.generator)
        return draws

    def transition(self, x_t, kernel, t, h, generator=None):
        """K draws of x_{t+h} ~ kernel sharing which positions move, one kept. Candidate 0 is the blind transition
        (the caller's generator); the positions where it moved (x_{t+h}^i != x_t^i) move in every candidate, each of
        candidates 1..K-1 drawing its destination from the kernel without the stay, q(y) / (1 - q(x_t^i)) for
        y != x_t^i, and the others stay. Each candidate is then a draw of the kernel, P(y) = (1 - q(x_t^i)) q(y) /
        (1 - q(x_t^i)) = q(y), and all follow the schedule of the one move mask (a mask-absorbing kernel: the same
        positions revealed), as the denoiser form's candidates do. A kernel carries no path, so the log proposal ratio
        is the draw's log q alone (no noising term; the shared stays cancel between candidates)."""
        t, h = _per_sequence(t, h, x_t)
        self.statistics.calls += 1
        first = self.blind.transition(x_t, kernel, t, h, generator)
        if self._unshaped(t):
            return first
        if self.scores == "proposal":
            raise UserError("An energy over whole proposals (a causal LM, oracle-sequence) scores the denoiser's draws "
                            "x1_hat, which a next-state kernel does not expose: shape this model with a state compass "
                            "(a compass checkpoint or oracle), or call the jump policy with the denoiser's probs.")
        tempered = temper_moves(kernel, x_t, self.blind.temperature)
        leaving = tempered.scatter(-1, x_t[..., None], 0.0)  # q(y) for y != x_t, the stay left out
        destinations = sample_categorical(leaving.unsqueeze(0).expand(self.num_candidates - 1, -1, -1, -1),
                                          self.generator, self.blind.dtype)
        candidates = torch.cat([first.unsqueeze(0), torch.where(first != x_t, destinations, x_t)])
        drawn = temper_moves(kernel.double(), x_t, self.blind.temperature).log().expand(self.num_candidates, -1, -1, -1)
        return self.select(candidates, t, h, drawn.gather(-1, candidates[..., None]).squeeze(-1).sum(-1))

    def select(self, candidates: Tensor, t: Tensor, h: Tensor, log_proposal: Tensor | None = None,
               scored: Tensor | Proposals | None = None) -> Tensor:
        """The kept one of ``candidates`` [K, B, L] (states at t + h), scored by the compass in one forward;
        ``log_proposal`` [K, B]: log q(x_k | x_t) - log p(x_t | x_k) per candidate, for ``importance``; ``scored``:
        what the energy reads in the candidates' place (default: the candidates; or their :class:`Proposals`)."""
        return self.scored_selection(candidates, t, h, log_proposal, scored)[0]

    def scored_selection(self, candidates: Tensor, t: Tensor, h: Tensor, log_proposal: Tensor | None = None,
                         scored: Tensor | Proposals | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`select`'s kept state [B, L], with the per-token energies [K, B, L] of ``scored``."""
        t, h = _per_sequence(t, h, candidates[0])
        if not isinstance(scored, Proposals):  # states, or proposals given as one draw per candidate
            scored = Proposals((candidates if scored is None else scored)[:, None], None)
        energies = scored.energies(self.energies, (t + h).clamp(max=1.0))
        if not torch.isfinite(energies).all():
            raise FloatingPointError(
                "The energy compass returned NaN or infinite energies; check the compass checkpoint (was its "
                "training stable?) and the precision it runs in (bf16 overflow: run the compass in float32).")
        index = self.selection(energies, t, self.generator, log_proposal)
        kept = gather_candidates(candidates, index)
        self.statistics.add(energies.mean(-1), gather_candidates(energies, index).mean(-1), candidates, kept)
        return kept, energies

    def __repr__(self) -> str:
        fillers = f", M={self.filler_draws}" if self.scores == "proposal" else ""
        return f"GuidedJump(K={self.num_candidates}{fillers}, selection={self.selection.name})"


def _per_sequence(t, h, x_t: Tensor) -> tuple[Tensor, Tensor]:
    """t and h as [B] (given as [B], [B, 1] or one number)."""
    return per_sequence(t, len(x_t), x_t.device), per_sequence(h, len(x_t), x_t.device, "h")
