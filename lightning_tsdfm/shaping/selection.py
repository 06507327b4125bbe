"""Selection policies: which of K candidate states to keep, given the compass's energies.

Candidates are [K, B, L] token ids, energies per token [K, B, L]; a sequence's energy is the mean of its
per-token energies, E_k = mean_i e_{k,i}. A policy returns the index of the kept candidate per sequence
[B, 1] or per token [B, L], which :func:`gather_candidates` turns into the new state [B, L]. The jump also
hands over each candidate's log proposal ratio log q(x_k | x_t) - log p(x_t | x_k) [K, B] (the draw's
probability over the path's noising probability), which only ``importance`` reads.

Every policy keeps candidate 0 for a sequence whose candidates all have the same energy (a compass with no
opinion): candidate 0 is the blind draw, so K = 1 or a constant energy reproduces blind distillation bit for
bit, and for ``boltzmann`` this is also the exact distribution (the candidates are i.i.d.). A policy also keeps
candidate 0 for a jump that starts outside its shaping window, t < shape_from or t >= shape_until (t = 0 the source):
shaping only the late jumps (shape_from > 0) leaves the early, diversity-setting ones blind; shaping only the early
ones (shape_until < 1) leaves blind the late jumps, where a learned energy may know less than the proposal does.
:meth:`SelectionPolicy.keep_probabilities` gives the law the index is drawn from (a one-hot for the deterministic
policies), with which a trajectory target can average over the candidates instead of keeping one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from lightning_tsdfm.jumps import sample_categorical


def gather_candidates(candidates: Tensor, index: Tensor) -> Tensor:
    """candidates [K, B, L], index [B, 1] or [B, L] -> the chosen ids [B, L]."""
    index = index.expand(candidates.shape[1:])
    return candidates.gather(0, index[None]).squeeze(0)


class SelectionPolicy(ABC):
    """index = policy(energies [K, B, L], t [B], generator) -> [B, 1] (one candidate per sequence) or [B, L]."""

    name: str
    #: jumps that start before this time keep candidate 0, the blind draw (0: every jump is shaped)
    shape_from: float = 0.0
    #: jumps that start at or after this time keep candidate 0 (1: every jump is shaped)
    shape_until: float = 1.0

    def __call__(self, energies: Tensor, t: Tensor, generator: torch.Generator | None = None,
                 log_proposal: Tensor | None = None) -> Tensor:
        sequence_energy = energies.mean(-1)  # [K, B]
        index = self.select(energies, sequence_energy, t, generator, log_proposal)
        return torch.where(self._keeps_blind(sequence_energy, t)[:, None], torch.zeros_like(index), index)

    def _keeps_blind(self, sequence_energy: Tensor, t: Tensor) -> Tensor:
        """Bool [B]: the sequence keeps candidate 0, because every candidate has the same energy (a compass with
        no opinion) or its jump starts outside the shaping window."""
        return (sequence_energy.amax(0) == sequence_energy.amin(0)) | ~self.shapes(t)

    def shapes(self, t: Tensor) -> Tensor:
        """Bool [B]: the jump from t lies in the shaping window, shape_from <= t < shape_until."""
        return (t >= self.shape_from) & (t < self.shape_until)

    def keep_probabilities(self, energies: Tensor, t: Tensor, log_proposal: Tensor | None = None) -> Tensor:
        """P(candidate k is kept at position i) [K, B, L]: the law that :meth:`__call__` draws its index from."""
        sequence_energy = energies.mean(-1)
        probs = self.probabilities(energies, sequence_energy, t, log_proposal)  # [K, B, 1] or [K, B, L]
        blind = torch.zeros_like(probs)
        blind[0] = 1.0
        return torch.where(self._keeps_blind(sequence_energy, t)[None, :, None], blind, probs).expand(energies.shape)

    def probabilities(self, energies: Tensor, sequence_energy: Tensor, t: Tensor, log_proposal: Tensor | None) -> Tensor:
        """[K, B, 1] or [K, B, L]; a deterministic policy's (the default) is the one-hot of its index."""
        index = self.select(energies, sequence_energy, t, None, log_proposal)
        return torch.nn.functional.one_hot(index, energies.shape[0]).permute(2, 0, 1).to(energies.dtype)

    @abstractmethod
    def select(self, energies: Tensor, sequence_energy: Tensor, t: Tensor, generator: torch.Generator | None,
               log_proposal: Tensor | None) -> Tensor:
        ...


class SampledSelection(SelectionPolicy):
    """A policy that draws the kept candidate of a sequence from weights over the K candidates."""

    @abstractmethod
    def weights(self, energies: Tensor, sequence_energy: Tensor, log_proposal: Tensor | None) -> Tensor:
        """P(keep candidate k) [B, K]."""

    def select(self, energies, sequence_energy, t, generator, log_proposal):
        return sample_categorical(self.weights(energies, sequence_energy, log_proposal), generator)[:, None]

    def probabilities(self, energies, sequence_energy, t, log_proposal):
        return self.weights(energies, sequence_energy, log_proposal).T[..., None]


class ArgminSelection(SelectionPolicy):
    """k* = argmin_k E_k: the most coherent candidate (the paper's policy). Ties go to the lowest k."""

    name = "argmin"

    def select(self, energies, sequence_energy, t, generator, log_proposal):
        return sequence_energy.argmin(0)[:, None]


class BoltzmannSelection(SampledSelection):
    """k ~ softmax_k(-E_k / tau): tau -> 0 is argmin, tau -> infinity a uniform (= blind) choice."""

    name = "boltzmann"

    def __init__(self, temperature: float = 1.0) -> None:
        if not temperature > 0:
            raise ValueError(f"boltzmann selection needs a temperature > 0, got {temperature} (use argmin for tau -> 0).")
        self.temperature = temperature

    def weights(self, energies, sequence_energy, log_proposal):
        """softmax_k(-E_k / tau) [B, K]."""
        return torch.softmax(-sequence_energy.double().T / self.temperature, dim=-1)


class ImportanceSelection(SampledSelection):
    """Sampling-importance-resampling toward the density the energies name:

        k ~ softmax_k(-sum_i e_{k,i} - log q(x_k | x_t) + log p(x_t | x_k)).

    With energies that sum to -log p_{t+h}(x) (the oracle compass) the weights are p_{t+h}(x_k) p(x_t | x_k) /
    q(x_k | x_t): the kept state is drawn from the path's reverse kernel p(x_{t+h} | x_t) as K -> infinity
    (exactly so on the mask source, where the K candidates share which positions move), so the policy corrects
    the proposal instead of sharpening it. A learned compass's NCE logit already estimates a ratio to the
    teacher's own density; for it, ``boltzmann`` at selection_temperature 1 is the corresponding resampling.
    """

    name = "importance"

    def weights(self, energies, sequence_energy, log_proposal):
        """The normalised importance weights [B, K]."""
        if log_proposal is None:
            raise ValueError("importance selection needs the candidates' proposal probabilities; "
                             "call it through GuidedJump, which supplies them.")
        log_weights = -energies.double().sum(-1) - log_proposal.double()  # [K, B]
        return torch.softmax(log_weights.T, dim=-1)


class SequenceToTokenSelection(SelectionPolicy):
    """Sequence-level argmin while t < switch_time; later, per position i the candidate with the lowest
    per-token energy e_{k,i} (scored in its own candidate's context): k_i* = argmin_k e_{k,i}."""

    name = "sequence_to_token"

    def __init__(self, switch_time: float = 0.5) -> None:
        check_unit_interval("switch_time", switch_time)
        self.switch_time = switch_time

    def select(self, energies, sequence_energy, t, generator, log_proposal):
        per_sequence = sequence_energy.argmin(0)[:, None].expand(energies.shape[1:])
        per_token = energies.argmin(0)
        return torch.where((t < self.switch_time)[:, None], per_sequence, per_token)


def check_unit_interval(name: str, value: float) -> None:
    """A time setting must lie in [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}.")


def make_selection(policy: str, temperature: float = 1.0, switch_time: float = 0.5,
                   shape_from: float = 0.0, shape_until: float = 1.0) -> SelectionPolicy:
    """The policy named ``policy``, shaping the jumps that start at shape_from <= t < ``shape_until``; a policy checks
    the value it reads (the settings of a run, all of them: :class:`~lightning_tsdfm.shaping.settings.ShapingSettings`)."""
    check_unit_interval("shape_from", shape_from)
    check_unit_interval("shape_until", shape_until)
    if shape_until < shape_from:
        raise ValueError(f"shape_until ({shape_until}) is below shape_from ({shape_from}): the jumps from shape_from <= "
                         f"t < shape_until are shaped, so the window ends before it starts; swap them.")
    selection = _named_selection(policy, temperature, switch_time)
    selection.shape_from, selection.shape_until = shape_from, shape_until
    return selection


def _named_selection(policy: str, temperature: float, switch_time: float) -> SelectionPolicy:
    if policy == "argmin":
        return ArgminSelection()
    if policy == "boltzmann":
        return BoltzmannSelection(temperature)
    if policy == "sequence_to_token":
        return SequenceToTokenSelection(switch_time)
    if policy == "importance":
        return ImportanceSelection()
    raise ValueError(f"Unknown selection policy {policy!r}: choose 'argmin', 'boltzmann', 'importance' or "
                     "'sequence_to_token'.")
