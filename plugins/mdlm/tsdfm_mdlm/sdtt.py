"""SDTTModule: few-step MDLM by self-distillation through time (SDTT-style, Deschenaux & Gulcehre 2024).

Round r of R (``steps_per_round`` optimizer steps each): the student learns one ancestral step of size
h_r = 2^(r+1) / N0 from a frozen teacher that takes two steps of h_r / 2; the teacher of round r is the student
at the start of round r (round 0: the MDLM checkpoint), so after R rounds the student samples in N0 / 2^R
steps. For x_t on the student's grid (t = k h_r, masked positions M):

    k1 = p_T(. | x_t, t);   m = jump(x_t, k1, t, h_r/2);   k2 = p_T(. | m, t + h_r/2)
    target^i = k1^i if position i was revealed in m, else k2^i
    loss = mean_{i in M} KL(p_S(. | x_t, t) || target^i)                    (reverse KL)

The midpoint m is a draw of ``self.jump_policy``: `--trainer.callbacks+=TrajectoryShaper` replaces it with the
compass-guided jump, with no change here. The student is an MDLM (same backbone, same samplers) and
inherits MDLM's blind sampling; the round teacher is held by reference and saved in the checkpoint (key
``sdtt``), so a resumed run continues the same round with the same teacher.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from lightning_tsdfm.losses import reverse_kl
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.round_teacher import RoundTeacherMixin
from lightning_tsdfm.modules.teacher_checkpoint import adopt, read_teacher
from tsdfm_mdlm.module import MDLMModule


class SDTTModule(RoundTeacherMixin, MDLMModule):
    """MDLM student distilled in rounds that double its step size.

    Args:
        teacher_checkpoint: an MDLM checkpoint written by `tsdfm fit` (architecture and weights).
        vocab_size: data vocabulary (linked from the DataModule); must equal the teacher's.
        seq_len: sequence length (linked from the DataModule); at most the teacher's.
        teacher_steps: N0, the teacher's step count; must be divisible by 2^num_rounds.
        num_rounds: R; the student ends at N0 / 2^R sampling steps.
        steps_per_round: optimizer steps per round.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
        teacher_hparams: filled in from the teacher checkpoint; lets a saved student load without its teacher.
    """

    round_teacher_key = "sdtt"  # where the round teacher sits in a checkpoint
    checkpoint_kind = "mdlm_sdtt"

    def __init__(
        self,
        teacher_checkpoint: str,
        vocab_size: int,
        seq_len: int,
        teacher_steps: int = 1024,
        num_rounds: int = 7,
        steps_per_round: int = 10_000,
        optimizer: OptimizerConfig = OptimizerConfig(lr=1e-4, warmup_steps=100),
        seed: int = 0,
        teacher_hparams: Optional[dict] = None,
    ) -> None:
        teacher = read_teacher(teacher_checkpoint, vocab_size, seq_len, teacher_hparams, kinds=("mdlm", "mdlm_sdtt"))
        if teacher_steps % 2**num_rounds:
            raise ValueError(f"teacher_steps={teacher_steps} is not divisible by 2^num_rounds={2**num_rounds}: "
                             "every round halves the step count.")
        super().__init__(vocab_size, teacher.hparams["seq_len"], backbone=teacher.backbone,
                         time_conditioning=teacher.hparams["time_conditioning"],
                         antithetic=teacher.hparams.get("antithetic", True), optimizer=optimizer,
                         t_max=teacher.hparams.get("t_max", 0.999), seed=seed)
        self.save_hyperparameters()
        adopt(self, teacher)
        self.init_round_teacher()

    # ---- rounds

    def current_round(self) -> int:
        return min(self.global_step // self.hparams.steps_per_round, self.hparams.num_rounds - 1)

    def student_step_size(self, round_: int) -> float:
        """h_r = 2^(r+1) / N0."""
        return 2 ** (round_ + 1) / self.hparams.teacher_steps

    # ---- the target

    @torch.no_grad()
    def two_step_target(self, x_t: Tensor, t: Tensor, h: Tensor, generator: torch.Generator) -> Tensor:
        """The round teacher's two half steps from x_t (see the module docstring); [B, L, V] probabilities."""
        teacher = self._round_teacher.module
        k1 = torch.softmax(self.denoise(teacher, x_t, t).float(), dim=-1)
        midpoint = self.jump_policy(x_t, k1, t, h / 2, self.path, generator)
        k2 = torch.softmax(self.denoise(teacher, midpoint, t + h / 2).float(), dim=-1)
        return torch.where(self.path.source.unsettled(midpoint)[..., None], k2, k1)

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        g = self.step_generator(x1.device)
        round_ = self.current_round()
        step = self.student_step_size(round_)
        grid = torch.randint(0, round(1 / step), (x1.shape[0],), device=x1.device, generator=g)
        t, h = grid * step, torch.full((x1.shape[0],), step, device=x1.device)
        x_t = self.path.sample(x1, t, g)
        target = self.two_step_target(x_t, t, h, g)
        loss = reverse_kl(self(x_t, t), target, self.path.source.unsettled(x_t))
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/round", float(round_))
        return loss
