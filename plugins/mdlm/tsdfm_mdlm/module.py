"""MDLMModule: the masked diffusion language model of Sahoo et al. (2024) on the library's mask path.

In our time (t = 0 all mask, t = 1 data) MDLM's log-linear schedule alpha = 1 - t_MDLM is kappa(t) = t:

- absorbing state: x_t^i = x1^i with probability t, else [MASK];
- SUBS parameterisation: the mask id is never predicted and a revealed token is carried over unchanged
  (``MaskSource.carry_over``), so p(x1 | x_t) moves mass only at masked positions;
- continuous-time NELBO (nats per token), t drawn antithetically (t_b = (u + b / B) mod 1):

      L = E_t [ 1/(1 - t) * sum_{i masked} -log p(x1^i | x_t) ] / L_seq;

- samplers: ``ancestral`` (MDLM's DDPM update, which is the library's blind jump: a masked position is
  revealed with probability h / (1 - t) and draws x1 ~ p(. | x_t)) and ``cached`` (the same draws, with a
  denoiser call reused for every sequence that did not change: :class:`CachedDenoiser`).

With ``time_conditioning=False`` (MDLM's OpenWebText default) the denoiser ignores t, which makes the cache
exact; with True it is conditioned on MDLM's sigma(t) = -log(1 - (1 - eps)(1 - t)), as MDLM's DIT.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from lightning_tsdfm.losses import generalized_kl
from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules.denoiser import DenoiserModule
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import PolynomialScheduler
from tsdfm_mdlm.cache import CachedDenoiser
from tsdfm_mdlm.checkpoint_layout import from_mdlm_state_dict

SIGMA_EPS = 1e-3  # MDLM's log-linear schedule keeps sigma finite at t_MDLM = 1


class MDLMModule(DenoiserModule):
    """MDLM: absorbing-state masked diffusion trained on the continuous-time NELBO.

    Args:
        vocab_size: data vocabulary (linked from the DataModule); the mask id is vocab_size.
        seq_len: sequence length (linked from the DataModule).
        backbone: the transformer (MDLM's layout: ``norm_weights: true``).
        time_conditioning: condition the denoiser on sigma(t) (MDLM's OWT models do not).
        antithetic: low-discrepancy times t_b = (u + b / B) mod 1 within a batch, as MDLM.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        t_max: upper bound of training times (the NELBO weight 1/(1 - t) diverges at t = 1).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
    """

    checkpoint_kind = "mdlm"
    samplers = ("ancestral", "cached")

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        backbone: Optional[TransformerConfig] = None,
        time_conditioning: bool = False,
        antithetic: bool = True,
        optimizer: OptimizerConfig = OptimizerConfig(),
        t_max: float = 0.999,
        seed: int = 0,
    ) -> None:
        backbone = backbone or TransformerConfig(norm_weights=True)
        super().__init__(vocab_size, seq_len, source="mask", scheduler=PolynomialScheduler(), backbone=backbone,
                         optimizer=optimizer, t_max=t_max, seed=seed, antithetic=antithetic)
        self.save_hyperparameters()
        self.time_conditioning = time_conditioning  # an attribute, not an hparam: a subclass saves its own hparams

    def time_input(self, t: Tensor) -> Tensor:
        """What the time embedding receives: MDLM's sigma(t) / 1000 (our embedding scales by 1000), or 0."""
        if not self.time_conditioning:
            return torch.zeros_like(t)
        return -torch.log1p(-(1 - SIGMA_EPS) * (1 - t)) / 1000

    def denoise(self, net: nn.Module, x_t: Tensor, t: Tensor) -> Tensor:
        """SUBS logits of p(x1 | x_t, t) [B, L, V] computed by ``net`` (this module's or a frozen copy)."""
        return self.path.source.carry_over(net(x_t, self.time_input(t)), x_t)

    def forward(self, x_t: Tensor, t: Tensor, h: Tensor | None = None) -> Tensor:
        return self.denoise(self.net, x_t, t)

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        t, x_t = self.path_sample(x1, self.step_generator(x1.device))
        loss = generalized_kl(self(x_t, t), x1, x_t, t, self.path).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def sampling_denoiser(self, sampler: str):
        if sampler == "cached":
            if self.time_conditioning:
                raise ValueError("The cached sampler reuses predictions across time steps, which is exact only for a "
                                 "time-unconditioned MDLM (time_conditioning=False); use sampler='ancestral'.")
            return CachedDenoiser(self)
        return self

    def load_mdlm_backbone(self, state_dict: dict[str, Tensor], mask_index: int | None = None) -> None:
        """Load the weights of an MDLM DIT checkpoint (kuleshov-group/mdlm names) into this module's backbone."""
        if not self.net.config.norm_weights:
            raise ValueError("MDLM's layout has LayerNorm scales: build the backbone with norm_weights=True.")
        mapped = from_mdlm_state_dict(state_dict, self.net.config.num_heads, mask_index)
        self.net.load_state_dict(mapped, strict=True)
