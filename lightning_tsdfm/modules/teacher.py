"""TeacherModule: a mixture-path denoiser p_theta(x1 | x_t, t) trained on path samples."""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch

from lightning_tsdfm.losses import generalized_kl, masked_cross_entropy, weighted_mean
from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules.denoiser import DenoiserModule
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import PolynomialScheduler
from lightning_tsdfm.prompt_masking import PROMPT_KINDS, PromptKind, PromptMasking, positions_to_fill


class TeacherModule(DenoiserModule):
    """Trains p_theta(x1 | x_t, t) with t ~ U(0, t_max), x_t ~ p_t(. | x1); with ``prompt_masking`` > 0, a share of
    the sequences as conditional samples p_theta(x1 | x_t, t) with x_t^K = x1^K for a random known set K
    (:mod:`lightning_tsdfm.prompt_masking`), the loss over the other positions only.

    Validation logs ``val/ce`` and ``val/nelbo`` (the generalized-KL bound, nats per token). Sampling goes
    through ``self.jump_policy`` (a :class:`~lightning_tsdfm.jumps.JumpPolicy`; the blind jump by default).

    Args:
        vocab_size: data vocabulary (linked from the DataModule by ``tsdfm fit``).
        seq_len: sequence length of the data (linked from the DataModule).
        source: ``mask`` (absorbing, an extra mask id) or ``uniform`` (random tokens).
        scheduler_exponent: n of kappa(t) = t^n.
        backbone: architecture of the transformer.
        loss: ``ce`` (cross-entropy on positions that can change) or ``gkl`` (generalized KL / NELBO).
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        t_max: upper bound of training times (the NELBO weight kappa'/(1-kappa) diverges at t=1).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
        prompt_masking: share of each batch's sequences (each picked with this probability) trained as conditional
            samples: a random known set (a prefix, or a head and tail around a span to fill) keeps its data tokens
            in x_t at every t, and the loss averages over the other positions. 0: unconditional training, as before.
        prompt_kinds: the known sets drawn, uniformly: ``prefix`` (a prompt continued to the end) and ``infill`` (a
            known head and tail around a span).
        time_conditioning: give the network t (a time embedding). False: the network sees x_t only, as MDLM's
            OpenWebText models; on the mask source p(x1 | x_t) does not depend on t. A student inherits the choice.
        antithetic: draw a batch's training times antithetically, t_b = t_max ((u + b / B) mod 1), as MDLM, DUO and
            FLM do (the default: on the small language a better teacher and student than i.i.d. times, at either
            training seed). False: i.i.d. t_b ~ U(0, t_max), as every teacher trained before this default.
    """

    checkpoint_kind = "teacher"

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        source: Literal["mask", "uniform"] = "mask",
        scheduler_exponent: float = 1.0,
        backbone: Optional[TransformerConfig] = None,
        loss: Literal["ce", "gkl"] = "ce",
        optimizer: OptimizerConfig = OptimizerConfig(),
        t_max: float = 0.999,
        seed: int = 0,
        prompt_masking: float = 0.0,
        prompt_kinds: Sequence[PromptKind] = PROMPT_KINDS,
        time_conditioning: bool = True,
        antithetic: bool = True,
    ) -> None:
        backbone = backbone or TransformerConfig()
        super().__init__(vocab_size, seq_len, source=source, scheduler=PolynomialScheduler(scheduler_exponent),
                         backbone=backbone, optimizer=optimizer, t_max=t_max, seed=seed,
                         time_conditioning=time_conditioning, antithetic=antithetic)
        self.save_hyperparameters()
        self.prompt_masking = PromptMasking.for_length(prompt_masking, prompt_kinds, seq_len)

    def training_step(self, x1: torch.Tensor, batch_idx: int) -> torch.Tensor:
        g = self.step_generator(x1.device)
        t, x_t = self.path_sample(x1, g)
        x_t, given = self.prompt_masking.condition(x1, x_t, g)
        logits = self(x_t, t)
        if self.hparams.loss == "ce":
            loss = masked_cross_entropy(logits, x1, positions_to_fill(self.path.source.unsettled(x_t), given))
        elif given is None:
            loss = generalized_kl(logits, x1, x_t, t, self.path).mean()
        else:
            loss = weighted_mean(generalized_kl(logits, x1, x_t, t, self.path), ~given.known)
        self.log("train/loss", loss, prog_bar=True)
        return loss
