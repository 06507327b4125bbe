"""CausalLMModule: a small autoregressive LM, p(x_i | x_<i), trained on the same corpus as the diffusion
models; the project's own generative-perplexity judge (``ar:<checkpoint>``)."""

from __future__ import annotations

from typing import Optional

import lightning as L
import torch
import torch.nn.functional as F

from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.modules.optim import adamw_with_warmup


class CausalLMModule(DataCardMixin, L.LightningModule):
    """Next-token cross-entropy with the backbone in causal mode and no time conditioning.

    Args:
        vocab_size: data vocabulary (linked from the DataModule by ``tsdfm fit``).
        seq_len: sequence length of the data (linked from the DataModule).
        backbone: architecture of the transformer.
        lr: AdamW peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up.
    """

    checkpoint_kind = "causal_lm"

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        backbone: Optional[TransformerConfig] = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 200,
    ) -> None:
        super().__init__()
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

    def configure_optimizers(self):
        return adamw_with_warmup(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.warmup_steps)
