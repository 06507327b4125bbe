"""TrajectoryShaper: a Callback that swaps a shapeable module's blind jumps for energy-guided ones.

    tsdfm fit --config configs/synthetic_student.yaml \
        --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=runs/.../compass.ckpt

``setup()`` checks the module (:func:`check_shapeable`), loads the compass frozen and outside the module
(never a parameter, never in the module's checkpoint, never wrapped by DDP) and checks it matches the module's
vocabulary, source and length. Only training batches are shaped: a :class:`GuidedJump` is ``module.jump_policy``
from ``on_train_batch_start`` to ``on_train_batch_end``, so validation, generation monitors and ``tsdfm sample``
draw blind. A module whose training step made no jump (a teacher trains on path samples) is refused after its
first batch: there is nothing to shape.

Randomness: the candidates 1..K-1 of training step s on rank r come from a generator seeded by
(seed, s, r, m), m the batch's place in the step's gradient-accumulation window
(:func:`~lightning_tsdfm.seeding.training_generator`). The seed is the callback's state (``state_dict``) and s and m
are restored by the trainer, so a run resumed from a checkpoint draws the same candidates as an uninterrupted one,
every DDP rank draws its own and every accumulated micro-batch its own.
The callback leaves torch's global random state as it found it (building the compass draws only inside
:func:`~lightning_tsdfm.seeding.global_random_state_kept`), so a module that draws from it (MDLM's draws its times,
masks and reverse draws there) trains with K = 1 exactly as without the callback.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_tsdfm.checkpoints.frozen import FrozenReference, state_dict_fingerprint
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.seeding import global_random_state_kept, training_generator
from lightning_tsdfm.shaping.guided_jump import GuidedJump
from lightning_tsdfm.shaping.compasses import compass_kind, load_matching_compass
from lightning_tsdfm.shaping.protocol import check_shapeable
from lightning_tsdfm.shaping.settings import Policy, ShapingSettings

_SEED_OFFSET = 7_919  # keeps the shaper's streams apart from the module's own (seed, step, rank) streams


class TrajectoryShaper(Callback):
    """Energy-guided midpoints for distillation: K candidates per jump, one kept by the compass.

    Args:
        compass: path of a compass checkpoint (``tsdfm fit`` with CompassModule), or ``oracle``: the exact
            energy -log p_t(x_t) / L of a synthetic language's data path (the upper bound of a compass); or an energy
            over the denoiser's whole proposals: ``ar:<causal LM checkpoint>``, ``hf:<name>``, ``smollm2`` or
            ``oracle-sequence`` (the language's own log p(x1)), best with ``policy=importance``.
        num_candidates: K, candidates per midpoint (K = 1 is blind distillation).
        policy: ``argmin`` (lowest energy), ``boltzmann`` (k ~ softmax(-E / selection_temperature); at tau = 1 a
            learned compass's NCE logit -E estimates log p_data / p_teacher, so this resamples toward the data),
            ``importance`` (k ~ softmax(-L E - log q + log p_noise): resampling toward the density the energy names,
            for the oracle compass) or ``sequence_to_token`` (sequence argmin before ``switch_time``, per-token
            argmin after).
        selection_temperature: tau of the boltzmann policy (not the sampling temperature of the jumps).
        switch_time: t at which ``sequence_to_token`` switches from sequences to tokens.
        shape_from: jumps that start before this time (t = 0 the source) stay blind; 0 shapes every jump.
        shape_until: jumps that start at or after this time stay blind; 1 shapes every jump (shape the early jumps
            alone where a learned energy knows less than the proposal late in the path).
        filler_draws: M, for an energy over whole proposals: the positions a jump leaves open are filled M times
            and a candidate's energy is the marginal over the fillers (M = 1: one filler shared by the candidates).
        seed: seed of the candidate draws, combined with (global_step, rank, micro-batch).

    The settings but the seed are one :class:`ShapingSettings` (``self.shaping``), whose defaults these are; a run
    resumed from a checkpoint shaped with other settings is refused (:meth:`load_state_dict`).
    """

    def __init__(self, compass: str, num_candidates: int = ShapingSettings.num_candidates,
                 policy: Policy = ShapingSettings.policy,
                 selection_temperature: float = ShapingSettings.selection_temperature,
                 switch_time: float = ShapingSettings.switch_time, shape_from: float = ShapingSettings.shape_from,
                 filler_draws: int = ShapingSettings.filler_draws,
                 shape_until: float = ShapingSettings.shape_until, seed: int = 0) -> None:
        self.shaping = ShapingSettings(compass, num_candidates, policy, selection_temperature, switch_time, shape_from,
                                       filler_draws, shape_until)
        self.seed = seed
        self.jump = GuidedJump(self._energies, num_candidates, self.shaping.selection(), filler_draws=filler_draws)
        self._compass: FrozenReference | None = None
        self._fingerprint: str | None = None  # of the compass's weights; None for an energy without a file (an oracle)
        self._previous_policy = None
        self._checked_jumps = False

    def _energies(self, x, t):
        compass = self._compass.module
        if isinstance(compass, torch.nn.Module) and next(compass.parameters()).device != x.device:
            compass.to(x.device)
        return compass.energies(x, t)

    # ---- lifecycle

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        check_shapeable(pl_module)
        if self._compass is None:
            datamodule_card = getattr(getattr(trainer, "datamodule", None), "data_card", None)
            card = getattr(pl_module, "data_card", None) or (datamodule_card() if datamodule_card else None)
            with global_random_state_kept():  # a compass checkpoint's module is initialised at random before it loads
                compass = load_matching_compass(self.shaping.compass, pl_module, pl_module.device, card)
            self._compass = FrozenReference(compass)
            self.jump.scores = compass.scores  # the states x_{t+h}, or the whole proposals x1_hat
            if isinstance(compass, torch.nn.Module):
                self._fingerprint = state_dict_fingerprint(compass.state_dict())

    def _install(self, pl_module: L.LightningModule) -> None:
        if pl_module.jump_policy is not self.jump:
            self._previous_policy = pl_module.jump_policy
            if isinstance(pl_module.jump_policy, BlindJump):
                self.jump.blind = pl_module.jump_policy  # candidate 0 is the module's own blind jump
            pl_module.jump_policy = self.jump

    def _restore(self, pl_module: L.LightningModule) -> None:
        if self._previous_policy is not None and pl_module.jump_policy is self.jump:
            pl_module.jump_policy = self._previous_policy
            self._previous_policy = None

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore(pl_module)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.jump.begin_step(training_generator(self.seed + _SEED_OFFSET, trainer, pl_module.device))
        self._install(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._restore(pl_module)
        statistics = self.jump.end_step()
        if not self._checked_jumps:
            if statistics.calls == 0:
                raise UserError(
                    f"TrajectoryShaper: {type(pl_module).__name__}'s training step made no jump through its "
                    "`jump_policy`, so there is nothing to shape (a teacher trains on path samples, not trajectories). "
                    "Shape a module that distils from trajectories (a student, SDTT), or drop the callback.")
            self._checked_jumps = True
        if statistics.jumps:
            for key, value in statistics.means().items():
                pl_module.log(f"shaping/{key}", value)

    # ---- checkpoint

    def settings(self) -> dict[str, Any]:
        """What shaped this run (saved in the checkpoint, read by the benchmarks): :meth:`ShapingSettings.as_dict`
        and the compass's kind (the loaded compass's, once :meth:`setup` has loaded it)."""
        kind = self._compass.module.kind if self._compass is not None else compass_kind(self.shaping.compass)
        return {**self.shaping.as_dict(), "compass_kind": kind}

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, **self.settings(), "compass_fingerprint": self._fingerprint}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the checkpoint's seed; refuse a checkpoint shaped with other settings than this run's, naming them, or
        with another compass under the same name (its weights' fingerprint differs: the file was replaced)."""
        recorded = state_dict.get("compass_fingerprint")
        if recorded and self._fingerprint and recorded != self._fingerprint:
            raise UserError(
                f"The compass {self.shaping.compass} is not the one the resumed checkpoint was shaped with: its weights "
                f"differ (the file was replaced or retrained). Resume with the original compass file, or start a new run.")
        differences = self.shaping.differences({k: v for k, v in state_dict.items() if k != "compass_fingerprint"})
        if differences:
            raise UserError(
                f"The checkpoint this run resumes was shaped with other settings than this run's TrajectoryShaper "
                f"({'; '.join(differences)}; checkpoint -> this run). Resume with the checkpoint's settings "
                f"(--trainer.callbacks.<name>=<value>, or the TrajectoryShaper arguments), or start a new run.")
        self.seed = state_dict["seed"]
