"""TeacherModule: a mixture-path denoiser p_theta(x1 | x_t, t) trained on path samples (DESIGN 3.1-3.2)."""

from __future__ import annotations

from typing import Literal, Optional

import lightning as L
import torch

from lightning_tsdfm.jumps import BlindJump, JumpPolicy
from lightning_tsdfm.losses import generalized_kl, masked_cross_entropy
from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source
from lightning_tsdfm.random import derived_generator
from lightning_tsdfm.sampling import sample_sequences
from lightning_tsdfm.modules.optim import adamw_with_warmup


class TeacherModule(DataCardMixin, L.LightningModule):
    """Trains p_theta(x1 | x_t, t) with t ~ U(0, 1), x_t ~ p_t(. | x1).

    Validation logs ``val/ce`` and ``val/nelbo`` (the generalized-KL bound, nats per token). Sampling goes
    through ``self.jump_policy`` (a :class:`~lightning_tsdfm.jumps.JumpPolicy`; the blind jump by default).

    Args:
        vocab_size: data vocabulary (linked from the DataModule by ``tsdfm fit``).
        seq_len: sequence length of the data (linked from the DataModule).
        source: ``mask`` (absorbing, an extra mask id) or ``uniform`` (random tokens).
        scheduler_exponent: n of kappa(t) = t^n.
        backbone: architecture of the transformer.
        loss: ``ce`` (cross-entropy on positions that can change) or ``gkl`` (generalized KL / NELBO).
        lr: AdamW peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up.
        t_max: upper bound of training times (the NELBO weight kappa'/(1-kappa) diverges at t=1).
        seed: seed of the training draws, combined with (global_step, rank).
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
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 200,
        t_max: float = 0.999,
        seed: int = 0,
    ) -> None:
        super().__init__()
        backbone = backbone or TransformerConfig()
        self.save_hyperparameters()
        self.path = MixturePath(make_source(source, vocab_size), PolynomialScheduler(scheduler_exponent))
        self.net = self.build_network(backbone)
        self.jump_policy: JumpPolicy = BlindJump()

    def build_network(self, backbone: TransformerConfig) -> DiffusionTransformer:
        return DiffusionTransformer(
            backbone, self.path.source.input_vocab_size, self.hparams.vocab_size, self.hparams.seq_len
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of p(x1 | x_t, t) [B, L, V]; a teacher ignores the step size h."""
        return self.path.source.carry_over(self.net(x_t, t), x_t)

    def _path_sample(self, x1: torch.Tensor, generator: torch.Generator):
        t = torch.rand(x1.shape[0], device=x1.device, generator=generator) * self.hparams.t_max
        return t, self.path.sample(x1, t, generator)

    def training_step(self, x1: torch.Tensor, batch_idx: int) -> torch.Tensor:
        g = derived_generator(self.hparams.seed, self.global_step, self.global_rank, x1.device)
        t, x_t = self._path_sample(x1, g)
        logits = self(x_t, t)
        if self.hparams.loss == "ce":
            loss = masked_cross_entropy(logits, x1, self.path.source.unsettled(x_t))
        else:
            loss = generalized_kl(logits, x1, x_t, t, self.path).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, x1: torch.Tensor, batch_idx: int) -> None:
        g = derived_generator(self.hparams.seed + 1, batch_idx, self.global_rank, x1.device)
        t, x_t = self._path_sample(x1, g)
        logits = self(x_t, t)
        self.log("val/ce", masked_cross_entropy(logits, x1, self.path.source.unsettled(x_t)), prog_bar=True)
        self.log("val/nelbo", generalized_kl(logits, x1, x_t, t, self.path).mean(), prog_bar=True)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        steps: int,
        generator: torch.Generator | None = None,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """``steps``-step samples through ``self.jump_policy``: LongTensor[num_samples, seq_len]."""
        was_training = self.training
        self.eval()
        try:
            return sample_sequences(
                self, self.path, self.jump_policy, num_samples, self.hparams.seq_len, steps,
                generator, self.device, batch_size, progress, description=f"{self.checkpoint_kind} {steps} steps",
            )
        finally:
            self.train(was_training)

    def configure_optimizers(self):
        return adamw_with_warmup(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_steps)
