"""DCDModule: DUO's Discrete Consistency Distillation, a DUO checkpoint distilled into a few-step sampler.

The Gaussian diffusion behind DUO has a deterministic probability-flow (DDIM) path through every (x1, eps), and its
argmax is a deterministic path in token space (:class:`~tsdfm_duo.trajectory.ArgmaxTrajectory`). The student learns
to predict, from a noisier point of such a path, what a teacher predicts from a cleaner point of the same path.

Round r of R (``steps_per_round`` optimizer steps each) uses the gap Delta_r = 2^r / N (N = ``teacher_steps``) on the
distillation band (:class:`~tsdfm_duo.band.GaussianBand`), and the teacher of round r is the student at the start of
round r (round 0: the DUO checkpoint). For u ~ U(0, 1 - Delta_r) and one trajectory per position,

    z_u = argmax w(gamma(u)),   z_{u+Delta} = argmax w(gamma(u + Delta))       (the same x1 and eps),
    loss = mean over positions of KL(p_student(. | z_u) || p_teacher(. | z_{u+Delta}))   (``reverse_kl``, DUO's default)
        or KL(p_teacher || p_student)                                               (``forward_kl``),

each network conditioned on the log-linear time of its kappa = T(gamma). The student is a DUOModule (same backbone,
ancestral sampler); the round teacher is held by reference and saved in the checkpoint (key ``dcd``), so a resumed
run continues the same round with the same teacher. With ``ema_decay`` the student is also averaged
(theta_ema <- d theta_ema + (1 - d) theta after each step, from the first step's weights): validation, sampling and
the saved weights are the average's, while each round's teacher is the raw student, as in DUO's recipe.

Not shapeable: see :data:`NOT_SHAPEABLE`.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
from torch import Tensor

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.losses import forward_kl, reverse_kl
from lightning_tsdfm.modules import read_checkpoint_header
from lightning_tsdfm.modules.ema import TargetEMA
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.round_teacher import RoundTeacherMixin
from lightning_tsdfm.modules.teacher_checkpoint import TeacherCheckpoint, adopt, read_teacher
from tsdfm_duo.band import DISTILLATION_KAPPA
from tsdfm_duo.module import DUOModule
from tsdfm_duo.trajectory import ArgmaxTrajectory

#: why TrajectoryShaper cannot shape DCD (read by lightning_tsdfm.shaping.check_shapeable)
NOT_SHAPEABLE = (
    "its training pairs (z_u, z_{u+Delta}) are two argmaxes of one Gaussian latent a onehot(x1) + s eps on the "
    "deterministic probability-flow (DDIM) path fixed by (x1, eps): z_{u+Delta} is a function of (x1, eps), not a "
    "draw from a next-state kernel, so no jump policy is called and there are no candidates to choose among; and a "
    "compass's choice in place of z_{u+Delta} would leave that path, so the teacher would no longer be evaluated on "
    "the student's trajectory, which is what the consistency target is. Train it without the callback (a compass may "
    "still guide its sampling: tsdfm sample --shaped)."
)

#: the checkpoint kinds DCD distils
TEACHER_KINDS = ("duo", "duo_dcd")

Divergence = Literal["reverse_kl", "forward_kl"]


def read_duo_teacher(path: str, vocab_size: int, seq_len: int, saved_hparams: dict | None) -> TeacherCheckpoint:
    """The DUO teacher at ``path`` (a ``duo`` or ``duo_dcd`` checkpoint); any other kind is refused with the reason."""
    if saved_hparams is None:
        kind = read_checkpoint_header(path)["kind"]
        if kind not in TEACHER_KINDS:
            raise UserError(
                f"{path} is a {kind!r} checkpoint: DCD distils a DUO model (a uniform-state denoiser with the "
                f"mean parameterisation, a 'duo' checkpoint of tsdfm_duo.DUOModule, or a 'duo_dcd' student to distil "
                f"further), whose trajectories are argmaxes of a Gaussian latent. Train one first "
                f"(tsdfm fit --config plugins/duo/configs/duo.yaml) and pass its last.ckpt as teacher_checkpoint."
            )
    return read_teacher(path, vocab_size, seq_len, saved_hparams, kinds=TEACHER_KINDS)


def teacher_setting(hparams: dict, name: str, default: Any) -> Any:
    """``name`` from a teacher's hyper-parameters, or from its own teacher's (a DCD student names its DUO's)."""
    while hparams is not None:
        if name in hparams:
            return hparams[name]
        hparams = hparams.get("teacher_hparams")
    return default


class DCDModule(RoundTeacherMixin, DUOModule):
    """A DUO student distilled by Discrete Consistency Distillation in rounds that double the gap.

    Args:
        teacher_checkpoint: a ``duo`` (or ``duo_dcd``) checkpoint written by `tsdfm fit` (architecture and weights).
        vocab_size: data vocabulary (linked from the DataModule); must equal the teacher's.
        seq_len: sequence length (linked from the DataModule); at most the teacher's.
        teacher_steps: N; round r pairs times Delta_r = 2^r / N apart on the band.
        num_rounds: R; the last round's gap is 2^(R-1) / N, which must be below 1.
        steps_per_round: optimizer steps per round (the round teacher is renewed at the start of each).
        divergence: ``reverse_kl`` (KL(student || teacher), DUO's default) or ``forward_kl``.
        gamma_min: the clean end of the distillation band (null: where T(gamma) = 0.999).
        gamma_max: its noisy end (null: where T(gamma) = 0.006).
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
        ema_decay: d of an exponential moving average of the student, whose weights are validated, sampled and
            saved (null: none, the raw student).
        teacher_hparams: filled in from the teacher checkpoint; lets a saved student load without its teacher.
    """

    round_teacher_key = "dcd"  # where the round teacher sits in a checkpoint
    checkpoint_kind = "duo_dcd"
    not_shapeable_because = NOT_SHAPEABLE
    default_kappa_range = DISTILLATION_KAPPA

    def __init__(
        self,
        teacher_checkpoint: str,
        vocab_size: int,
        seq_len: int,
        teacher_steps: int = 512,
        num_rounds: int = 5,
        steps_per_round: int = 10_000,
        divergence: Divergence = "reverse_kl",
        gamma_min: Optional[float] = None,
        gamma_max: Optional[float] = None,
        optimizer: OptimizerConfig = OptimizerConfig(lr=6e-5, warmup_steps=500),
        seed: int = 0,
        ema_decay: Optional[float] = None,
        teacher_hparams: Optional[dict] = None,
    ) -> None:
        teacher = read_duo_teacher(teacher_checkpoint, vocab_size, seq_len, teacher_hparams)
        if num_rounds < 1 or steps_per_round < 1:
            raise ValueError(f"num_rounds and steps_per_round must be >= 1, got {num_rounds} and {steps_per_round}.")
        if 2 ** (num_rounds - 1) >= teacher_steps:
            raise ValueError(f"The last round's gap 2^(num_rounds - 1) / teacher_steps = {2 ** (num_rounds - 1)} / "
                             f"{teacher_steps} leaves no room on the band: use fewer rounds or more teacher_steps.")
        if divergence not in ("reverse_kl", "forward_kl"):
            raise ValueError(f"Unknown divergence {divergence!r}: choose 'reverse_kl' or 'forward_kl'.")
        if ema_decay is not None and not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"ema_decay={ema_decay} must lie in [0, 1] (or be null: no average).")
        hparams = teacher.hparams
        super().__init__(vocab_size, hparams["seq_len"], backbone=teacher.backbone, curriculum_steps=0,
                         gamma_min=gamma_min, gamma_max=gamma_max, eps=teacher_setting(hparams, "eps", 1e-3),
                         antithetic=teacher_setting(hparams, "antithetic", True), optimizer=optimizer,
                         t_max=teacher_setting(hparams, "t_max", 0.999), seed=seed)
        self.save_hyperparameters()
        adopt(self, teacher)
        self.init_round_teacher()
        self._ema = None if ema_decay is None else TargetEMA(decay=ema_decay)

    def configure_callbacks(self):
        return [] if self._ema is None else [self._ema]

    # ---- rounds

    def current_round(self) -> int:
        return min(self.global_step // self.hparams.steps_per_round, self.hparams.num_rounds - 1)

    def gap(self, round_: int) -> float:
        """Delta_r = 2^r / N."""
        return 2**round_ / self.hparams.teacher_steps

    # ---- the consistency loss

    def consistency_loss(self, x1: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(the divergence between the student at z_u and the round teacher at z_{u+Delta}, the share of positions
        whose token differs between the two points)."""
        gap = self.gap(self.current_round())
        u = self.draw_times(x1.shape[0], generator, x1.device, 1.0 - gap)
        later = u + gap
        trajectory = ArgmaxTrajectory.draw(x1, self.hparams.vocab_size, generator)
        z_student, z_teacher = trajectory.tokens(self.band.gamma(u)), trajectory.tokens(self.band.gamma(later))
        logits = self.net(z_student, self.time_input(self.band.kappa(u)))
        with torch.no_grad():
            teacher = self.round_teacher()
            target = torch.softmax(teacher(z_teacher, self.time_input(self.band.kappa(later))).float(), dim=-1)
        everywhere = torch.ones_like(x1, dtype=torch.bool)
        if self.hparams.divergence == "reverse_kl":
            loss = reverse_kl(logits, target, everywhere)
        else:
            loss = forward_kl(target, logits, everywhere)
        return loss, (z_student != z_teacher).float().mean()

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        loss, moved = self.consistency_loss(x1, self.step_generator(x1.device))
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/round", float(self.current_round()))
        self.log("train/moved", moved)
        return loss

    def validation_step(self, x1: Tensor, batch_idx: int) -> None:
        """``val/nelbo`` of the student as a DUO model, and ``val/consistency``, the distillation loss."""
        super().validation_step(x1, batch_idx)
        loss, _ = self.consistency_loss(x1, self.validation_generator(batch_idx, x1.device, offset=1))
        self.log("val/consistency", loss)
