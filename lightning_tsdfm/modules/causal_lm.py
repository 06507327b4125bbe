"""CausalLMModule: a small autoregressive LM, p(x_i | x_<i), trained on the same corpus as the diffusion
models; the project's own generative-perplexity judge (``ar:<checkpoint>``) and a whole-proposal energy for shaping
(:class:`lightning_tsdfm.shaping.energies.CausalLMEnergy`)."""

from __future__ import annotations

from typing import Optional

import lightning as L
import torch
import torch.nn.functional as F

from lightning_tsdfm.checkpoints.header import CAUSAL_LM_KIND
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
        start_token: prepend a start id (``vocab_size``, an extra input id) to every sequence, so the first token is
            predicted too and :meth:`token_log_likelihood` scores every position: log p(x) = sum_i log p(x_i | x_<i).
            Without it the first token of a block is context only (the text judge supplies its own BOS).
    """

    checkpoint_kind = CAUSAL_LM_KIND

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        backbone: Optional[TransformerConfig] = None,
        optimizer: OptimizerConfig = OptimizerConfig(lr=1e-3),
        start_token: bool = False,
    ) -> None:
        super().__init__()
        self.optimizer_config = OptimizerConfig.of(optimizer)
        backbone = backbone or TransformerConfig()
        self.save_hyperparameters()
        self.start_id = vocab_size if start_token else None
        # one extra position so a BOS token can precede a full block
        self.net = DiffusionTransformer(backbone, vocab_size + int(start_token), vocab_size, seq_len + 1,
                                        time_conditioning=False, causal=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, L, V] of p(x_{i+1} | x_<=i)."""
        return self.net(tokens)

    def _with_start(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.start_id is None:
            return tokens
        return F.pad(tokens, (1, 0), value=self.start_id)

    def token_log_likelihood(self, tokens: torch.Tensor) -> torch.Tensor:
        """log p(x_i | x_<i) [B, L] float32; with no start token the first position has no context and gets 0."""
        inputs = self._with_start(tokens)
        log_p = torch.log_softmax(self(inputs[:, :-1]).float(), dim=-1)
        terms = log_p.gather(-1, inputs[:, 1:, None]).squeeze(-1)
        return terms if self.start_id is not None else F.pad(terms, (1, 0))

    def _loss(self, tokens: torch.Tensor) -> torch.Tensor:
        inputs = self._with_start(tokens)
        logits = self(inputs[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1).float(), inputs[:, 1:].flatten())

    def training_step(self, tokens: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self._loss(tokens)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, tokens: torch.Tensor, batch_idx: int) -> None:
        loss = self._loss(tokens)
        self.log("val/ce", loss, prog_bar=True)
        self.log("val/ppl", loss.exp())
