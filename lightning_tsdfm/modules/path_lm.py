"""PathLMModule: a causal LM of the data path's noised states, the learned counterpart of the exact data-path
energy (the state oracle), and a state energy for shaping.

A state x_t of a mixture path is data x1 with each position kept with probability kappa(t), else a source draw,
independently of the data. So, position by position,

    p_t(x_t^i | x_t^{<i}) = kappa(t) p(x1^i = x_t^i | x_t^{<i}) + (1 - kappa(t)) p_source(x_t^i),

and the one unknown is the data's conditional p(x1^i | x_t^{<i}): the next clean token given the noised prefix
(the same whatever x_t^i is, so every position is a target). A causal transformer with time conditioning learns it
by maximum likelihood on path samples, t ~ U(0, 1), x_t ~ p_t(. | x1), cross-entropy of x1^i at every position.
Its energy

    e_i(x_t, t) = -log p_t(x_t^i | x_t^{<i}),   sum_i e_i = -log p_t(x_t),

estimates the state oracle's from the partial state itself: one forward a candidate, no filler draws, and a jump's
candidates are ranked by the marginal of what they reveal. With the mask source a masked position's term is
-log(1 - kappa(t)) exactly and a revealed one's -log kappa(t) - log p(x1^i = x_t^i | x_t^{<i}).
"""

from __future__ import annotations

from typing import Optional

import lightning as L
import torch
import torch.nn.functional as F

from lightning_tsdfm.checkpoints.header import PATH_LM_KIND
from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.training import TrainingMixin
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, SourceName, make_source


class PathLMModule(TrainingMixin, DataCardMixin, L.LightningModule):
    """p(x1^i | x_t^{<i}, t) by a causal, time-conditioned transformer; :meth:`energies` is -log p_t(x_t^i | x_t^{<i}).

    Args:
        vocab_size: data vocabulary (linked from the DataModule).
        seq_len: sequence length (linked from the DataModule).
        source: the path's t = 0 source, ``mask`` or ``uniform``: that of the models it will shape.
        scheduler_exponent: n in kappa(t) = t^n, that of the models it will shape (checked when it is loaded as
            their compass).
        backbone: architecture of the transformer.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the path draws, combined with (global_step, rank, micro-batch).
    """

    checkpoint_kind = PATH_LM_KIND
    kind = "path-lm"  # the kind of energy, in result rows
    scores = "state"  # it scores the noised states x_{t+h}

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        source: SourceName = "mask",
        scheduler_exponent: float = 1.0,
        backbone: Optional[TransformerConfig] = None,
        optimizer: OptimizerConfig = OptimizerConfig(lr=1e-3),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.optimizer_config, self.seed = OptimizerConfig.of(optimizer), seed
        backbone = backbone or TransformerConfig()
        self.save_hyperparameters()
        self.path = MixturePath(make_source(source, vocab_size), PolynomialScheduler(scheduler_exponent))
        self.source_name = self.path.source.name
        self.start_id = self.path.source.input_vocab_size  # an extra input id before every sequence
        self.net = DiffusionTransformer(backbone, self.start_id + 1, vocab_size, seq_len + 1, causal=True)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p(x1^i | x_t^{<i}, t) [B, L, V] (float32), for states x_t [B, L] at times t [B]."""
        inputs = F.pad(x_t, (1, 0), value=self.start_id)[:, :-1]
        return torch.log_softmax(self.net(inputs, t).float(), dim=-1)

    @torch.no_grad()
    def energies(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per-token energies -log p_t(x^i | x^{<i}) [B, L] (float32) of states x [B, L] at times t [B]."""
        return -path_log_terms(self(x, t), x, self.path.scheduler.kappa(t.float()), self.path.source.log_prob(x))

    def _loss(self, x1: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        t = torch.rand(len(x1), generator=generator, device=x1.device)
        x_t = self.path.sample(x1, t, generator)
        return F.nll_loss(self(x_t, t).flatten(0, 1), x1.flatten())

    def training_step(self, x1: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self._loss(x1, self.step_generator(x1.device))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, x1: torch.Tensor, batch_idx: int) -> None:
        loss = self._loss(x1, self.validation_generator(batch_idx, x1.device))
        self.log("val/ce", loss, prog_bar=True)


def path_log_terms(log_p_x1: torch.Tensor, x_t: torch.Tensor, kappa: torch.Tensor,
                   source_log_prob: torch.Tensor) -> torch.Tensor:
    """log p_t(x_t^i | x_t^{<i}) = log(kappa p(x1^i = x_t^i | .) + (1 - kappa) p_source(x_t^i)) [B, L], from the
    data conditionals ``log_p_x1`` [B, L, V], the states [B, L] (a source id outside 0..V-1, the mask, is never data),
    kappa(t) [B] and log p_source(x_t^i) [B, L]."""
    vocab_size = log_p_x1.shape[-1]
    is_data = x_t < vocab_size
    data = log_p_x1.gather(-1, x_t.clamp_max(vocab_size - 1)[..., None]).squeeze(-1)
    kappa = kappa.double()[:, None]
    kept = torch.where(is_data, kappa.log() + data.double(), float("-inf"))
    redrawn = torch.log1p(-kappa) + source_log_prob.double()
    return torch.logaddexp(kept, redrawn).float()
