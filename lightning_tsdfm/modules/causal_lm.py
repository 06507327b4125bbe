"""CausalLMModule: a small autoregressive LM, p(x_i | x_<i), trained on the same corpus as the diffusion
models; the project's own generative-perplexity judge (``ar:<checkpoint>``)."""

from __future__ import annotations

from typing import Optional

import lightning as L
import torch
import torch.nn.functional as F

from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.training import TrainingMixin


class CausalLMModule(TrainingMixin, DataCardMixin, L.LightningModule):
    """Next-token cross-entropy with the backbone in causal mode and no time conditioning.

    Args:
        vocab_size: data vocabulary (linked from the DataModule by ``tsdfm fit``).
        seq_len: sequence length of the data (linked from the DataModule).
        backbone: architecture of the transformer.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
    """

    checkpoint_kind = "causal_lm"

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        backbone: Optional[TransformerConfig] = None,
        optimizer: OptimizerConfig = OptimizerConfig(lr=1e-3),
    ) -> None:
        super().__init__()
        self.optimizer_config = OptimizerConfig.of(optimizer)
        backbone = backbone or TransformerConfig()
        self.save_hyperparameters()
        # one extra position so a BOS token can precede a full block
        self.net = DiffusionTransformer(backbone, vocab_size, vocab_size, seq_len + 1, time_conditioning=False, causal=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, L, V] of p(x_{i+1} | x_<=i)."""
        return self.net(tokens)

    def _loss(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self(tokens[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())

    def training_step(self, tokens: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self._loss(tokens)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, tokens: torch.Tensor, batch_idx: int) -> None:
        loss = self._loss(tokens)
        self.log("val/ce", loss, prog_bar=True)
        self.log("val/ppl", loss.exp())
