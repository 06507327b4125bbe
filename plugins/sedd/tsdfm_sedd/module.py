"""SEDDModule: score entropy discrete diffusion (Lou, Meng & Ermon, 2024) on the library's protocol.

The backbone f(x_tau, tau) [B, L, V] gives log-scores through the graph (absorb: log s = f - log(e^sigma - 1)
- log V; uniform: log s = f). Training minimises the denoising score entropy weighted by |d sigma / d tau|,

    loss = E_{tau ~ U(0, 1 - 1e-3), x_tau ~ p_tau(. | x1)} mean_i (1 - eps) / kappa(tau) * SE_i(s, x_tau, x1),

which, integrated over tau, bounds the negative log-likelihood (nats per token). Sampling computes the
Euler or Tweedie kernel of each step and lets the library's jump policy draw it.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules.denoiser import DenoiserModule
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.sampling import Step
from tsdfm_sedd.graphs import make_graph
from tsdfm_sedd.noise import LogLinearNoise
from tsdfm_sedd.samplers import SAMPLERS, check_sampler, step_kernel

#: training times are drawn from U(0, TAU_MAX): the rate weight (1 - eps) / kappa is finite anyway, but the
#: score near tau = 1 (no noise left) carries no signal
TAU_MAX = 1.0 - 1e-3


class SEDDModule(DenoiserModule):
    """A SEDD score model s_theta(x_tau, tau) on the absorbing or uniform graph.

    ``self.path`` is SEDD's forward process as the library's mixture path: the graph's source (mask or
    uniform) with the log-linear noise kappa = eps + (1 - eps) tau as its scheduler, which the loss, the
    samplers and the library's shaper all read. ``forward`` returns log-scores, not logits of a denoiser.

    Args:
        vocab_size: data vocabulary (linked from the DataModule by ``tsdfm fit``).
        seq_len: sequence length of the data (linked from the DataModule).
        graph: ``absorb`` (tokens move to an extra mask id) or ``uniform`` (tokens move to random tokens).
        sampler: ``tweedie`` (tau-leaping with the Tweedie denoiser) or ``euler``: the default of :meth:`sample`.
        backbone: architecture of the transformer.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        eps: kappa(0) = eps of the log-linear noise, sigma(0) = log(1 / eps).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
    """

    checkpoint_kind = "sedd"

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        graph: Literal["absorb", "uniform"] = "absorb",
        sampler: Literal["tweedie", "euler"] = "tweedie",
        backbone: Optional[TransformerConfig] = None,
        optimizer: OptimizerConfig = OptimizerConfig(),
        eps: float = 1e-3,
        seed: int = 0,
    ) -> None:
        score_graph = make_graph(graph, vocab_size)
        check_sampler(sampler)
        backbone = backbone or TransformerConfig()
        super().__init__(vocab_size, seq_len, source=score_graph.source, scheduler=LogLinearNoise(eps),
                         backbone=backbone, optimizer=optimizer, t_max=TAU_MAX, seed=seed)
        self.graph = score_graph
        self.save_hyperparameters()

    @property
    def noise(self) -> LogLinearNoise:
        """The log-linear noise (kappa, sigma, rate): the scheduler of ``self.path``."""
        return self.path.scheduler

    def forward(self, x_t: Tensor, t: Tensor, h: Tensor | None = None) -> Tensor:
        """log s_theta(x_t, t)_y [B, L, V] for the data tokens y (``h`` is ignored)."""
        return self.graph.log_score(self.net(x_t, t).float(), self.noise.kappa(t))

    def score_entropy(self, x1: Tensor, x_t: Tensor, tau: Tensor) -> Tensor:
        """Per-position weighted score entropy (1 - eps) / kappa(tau) * SE [B, L]; its mean is the loss."""
        per_position = self.graph.score_entropy(self(x_t, tau), x_t, x1, self.noise.kappa(tau))
        return self.noise.rate(tau).to(per_position)[:, None] * per_position

    def loss(self, x1: Tensor, generator: torch.Generator) -> Tensor:
        """tau ~ U(0, 1 - 1e-3), x_tau ~ p_tau(. | x1): the score entropy in nats per token."""
        tau = torch.rand(x1.shape[0], generator=generator, device=x1.device) * TAU_MAX
        return self.score_entropy(x1, self.path.sample(x1, tau, generator), tau).mean()

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        loss = self.loss(x1, self.step_generator(x1.device))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, x1: Tensor, batch_idx: int) -> None:
        self.log("val/nelbo", self.loss(x1, self.validation_generator(batch_idx, x1.device)), prog_bar=True)

    @property
    def samplers(self) -> tuple[str, ...]:
        """The samplers :meth:`sample` offers, the default (``hparams.sampler``) first."""
        return (self.hparams.sampler, *(name for name in SAMPLERS if name != self.hparams.sampler))

    def kernel(self, x: Tensor, t: Tensor, h: Tensor, sampler: str | None = None) -> Tensor:
        """q(x_{t+h} | x_t = x) [B, L, S] of ``sampler`` (default: hparams.sampler) from the model's scores."""
        return step_kernel(sampler or self.hparams.sampler, self.graph, self.noise, x, self(x, t), t, h)

    def sampling_step(self, sampler: str, jump: JumpPolicy) -> Step:
        """One step: the kernel of ``sampler`` (the last step denoises), drawn by ``jump.transition``."""

        def step(x: Tensor, t: Tensor, h: Tensor, generator: torch.Generator | None) -> Tensor:
            return jump.transition(x, self.kernel(x, t, h, sampler), t, h, generator)

        return step
