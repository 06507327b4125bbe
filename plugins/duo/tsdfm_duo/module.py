"""DUOModule: uniform-state discrete diffusion with DUO's Gaussian curriculum (Sahoo et al., 2025).

The path is the library's uniform-source mixture path with the log-linear schedule kappa(u) = 1 - (1 - eps)(1 - u)
(u = 0 noise, u = 1 data): z_u keeps x1 with probability kappa(u) and is a uniform token otherwise. The backbone
gives the logits of x_theta (the mean parameterisation; nothing is carried over), conditioned on the log-linear time
of the noise level.

Training minimises the uniform-state NELBO (:func:`~tsdfm_duo.nelbo.uniform_state_nelbo`), in one of two ways:

- the curriculum, for the first ``curriculum_steps`` steps: u ~ U(0, 1) on the Gaussian band, the latent
  w = a onehot(x1) + s eps, the denoiser reads softmax(w / tau), the loss is taken at z = argmax(w) with the band's
  kappa = T(gamma(u)) and d kappa / du (:mod:`tsdfm_duo.curriculum`);
- then the discrete loss: u ~ U(0, t_max), z ~ p_u(. | x1) on the log-linear path.

Either way the denoiser sees the time u' at which the log-linear schedule has the same kappa, u' = 1 - (1 - kappa) /
(1 - eps), so both phases and the sampler agree on what a time means. Sampling takes ancestral steps
(:func:`~tsdfm_duo.posterior.ancestral_kernel`) drawn by the library's jump policy, on the log-linear path, N steps
for N network calls (the last step, to kappa = 1, denoises).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules.denoiser import DenoiserModule
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import LogLinearScheduler
from lightning_tsdfm.sampling import Step
from tsdfm_duo.band import CURRICULUM_KAPPA, GaussianBand
from tsdfm_duo.curriculum import Curriculum, relaxed_one_hot
from tsdfm_duo.duality import gaussian_latent
from tsdfm_duo.nelbo import prior_kl, uniform_state_nelbo
from tsdfm_duo.posterior import ancestral_kernel


class DUOModule(DenoiserModule):
    """DUO: a uniform-state diffusion LM trained on the NELBO, with the Gaussian-relaxation curriculum first.

    Args:
        vocab_size: data vocabulary (linked from the DataModule); there is no mask id.
        seq_len: sequence length (linked from the DataModule).
        backbone: the transformer.
        curriculum_steps: optimizer steps trained on the tempered-softmax relaxation (0: the discrete loss only).
        temperature_start: tau of the relaxation at step 0.
        temperature_end: tau at step ``curriculum_steps`` (log-linear in between).
        gamma_min: the clean end of the curriculum's Gaussian log-SNR band (null: where T(gamma) = 0.95).
        gamma_max: its noisy end (null: where T(gamma) = 0.05).
        eps: kappa(0) of the log-linear schedule kappa(u) = 1 - (1 - eps)(1 - u).
        antithetic: low-discrepancy times within a batch, u_b = (v + b / B) mod 1.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        t_max: upper bound of the discrete loss's times.
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
    """

    checkpoint_kind = "duo"
    samplers = ("ancestral",)
    #: the kappa range of the Gaussian band when gamma_min or gamma_max is left out
    default_kappa_range = CURRICULUM_KAPPA

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        backbone: Optional[TransformerConfig] = None,
        curriculum_steps: int = 1000,
        temperature_start: float = 0.1,
        temperature_end: float = 0.01,
        gamma_min: Optional[float] = None,
        gamma_max: Optional[float] = None,
        eps: float = 1e-3,
        antithetic: bool = True,
        optimizer: OptimizerConfig = OptimizerConfig(),
        t_max: float = 0.999,
        seed: int = 0,
    ) -> None:
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must lie in (0, 1): kappa(0) = eps > 0 keeps the NELBO's weight finite, got {eps}.")
        super().__init__(vocab_size, seq_len, source="uniform", scheduler=LogLinearScheduler(eps),
                         backbone=backbone or TransformerConfig(), optimizer=optimizer, t_max=t_max, seed=seed,
                         antithetic=antithetic)
        self.save_hyperparameters()
        # attributes, not hparams: a subclass saves its own hparams
        self.curriculum = Curriculum(curriculum_steps, temperature_start, temperature_end)
        self.band = GaussianBand.spanning(vocab_size, gamma_min, gamma_max, self.default_kappa_range)
        self.eps = eps

    # ---- time

    def time_input(self, kappa: Tensor) -> Tensor:
        """The log-linear time of noise level kappa, u' = 1 - (1 - kappa) / (1 - eps) in [0, 1], float32."""
        return (1 - (1 - kappa.double()) / (1 - self.eps)).clamp(0.0, 1.0).float()

    # ---- the two losses

    def discrete_loss(self, x1: Tensor, generator: torch.Generator) -> Tensor:
        """The NELBO's integrand at u ~ U(0, t_max), z_u ~ p_u(. | x1) on the log-linear path, nats per token."""
        u, x_t = self.path_sample(x1, generator)
        scheduler = self.path.scheduler
        return uniform_state_nelbo(self(x_t, u), x1, x_t, scheduler.kappa(u), scheduler.d_kappa(u)).mean()

    def curriculum_loss(self, x1: Tensor, generator: torch.Generator, temperature: float) -> Tensor:
        """The NELBO's integrand on the Gaussian band with the denoiser reading softmax(w / tau), at z = argmax(w)."""
        u = self.draw_times(x1.shape[0], generator, x1.device)
        noise = torch.randn((*x1.shape, self.hparams.vocab_size), generator=generator, device=x1.device)
        latent = gaussian_latent(x1, self.band.gamma(u), noise)
        kappa = self.band.kappa(u)
        logits = self.net(relaxed_one_hot(latent, temperature), self.time_input(kappa))
        return uniform_state_nelbo(logits, x1, latent.argmax(-1), kappa, self.band.d_kappa(u)).mean()

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        generator = self.step_generator(x1.device)
        if self.curriculum.active(self.global_step):
            temperature = self.curriculum.temperature(self.global_step)
            loss = self.curriculum_loss(x1, generator, temperature)
            self.log("train/temperature", temperature)
        else:
            loss = self.discrete_loss(x1, generator)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, x1: Tensor, batch_idx: int) -> None:
        """``val/nelbo``: the discrete loss plus the prior term, a bound on nats per token (both phases)."""
        nelbo = self.discrete_loss(x1, self.validation_generator(batch_idx, x1.device))
        self.log("val/nelbo", nelbo + prior_kl(self.eps, self.hparams.vocab_size), prog_bar=True)

    # ---- sampling

    def kernel(self, x: Tensor, t: Tensor, h: Tensor) -> Tensor:
        """p(z_{t+h} | z_t = x) [B, L, V] of the ancestral step on the log-linear path."""
        scheduler = self.path.scheduler
        probs = torch.softmax(self(x, t).double(), dim=-1)
        return ancestral_kernel(probs, x, scheduler.kappa(t.double()),
                                scheduler.kappa((t.double() + h.double()).clamp_max(1.0)))

    def sampling_step(self, sampler: str, jump: JumpPolicy) -> Step:
        """One ancestral step, its kernel drawn by ``jump.transition``."""
        if sampler not in self.samplers:
            raise ValueError(f"{type(self).__name__} has no sampler {sampler!r}: choose one of {list(self.samplers)}.")

        def step(x: Tensor, t: Tensor, h: Tensor, generator: torch.Generator | None) -> Tensor:
            return jump.transition(x, self.kernel(x, t, h), t, h, generator)

        return step
