"""DenoiserModule: what a teacher and a student share: a mixture path, a backbone giving p(x1 | x_t, t[, h]),
validation of the denoising loss and NELBO, and N-step sampling through a :class:`JumpPolicy`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Optional

import lightning as L
import torch

from lightning_tsdfm.conditioning import ConditionedJump, Given, check_given
from lightning_tsdfm.jumps import BlindJump, JumpPolicy
from lightning_tsdfm.losses import generalized_kl, masked_cross_entropy
from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.training import TrainingMixin
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, Scheduler, make_source
from lightning_tsdfm.sampling import (
    Step,
    denoiser_step,
    given_start,
    sample_chain,
    sample_chain_given,
    sample_first_hitting,
)
from lightning_tsdfm import time_draws


class DenoiserModule(TrainingMixin, DataCardMixin, L.LightningModule):
    """Base of the teacher and the student. Subclasses define ``training_step``.

    ``self.jump_policy`` is the seam: every jump this module makes to build trajectories and to sample is a call of
    it (a shaper installs its guided jump for training batches only, so sampling stays blind). Validation logs ``val/ce`` and ``val/nelbo``.
    ``scheduler`` is the kappa of ``self.path`` (default kappa(t) = t); a subclass exposes what configures it
    as its own hyper-parameters (the teacher's ``scheduler_exponent``, SEDD's ``eps``). ``optimizer`` and ``seed``
    configure the optimizer and the draws (:class:`~lightning_tsdfm.modules.training.TrainingMixin`).
    ``time_conditioning=False`` builds a backbone without a time embedding: on the mask source p(x1 | x_t) does not
    depend on t (the mask count says how far along x_t is), so the network is not told t. ``antithetic`` draws a
    batch's training times antithetically (:func:`~lightning_tsdfm.time_draws.draw_times`).
    """

    checkpoint_kind = "denoiser"
    step_size_conditioning = False

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        *,
        source: Literal["mask", "uniform"] = "mask",
        scheduler: Optional[Scheduler] = None,
        backbone: Optional[TransformerConfig] = None,
        optimizer: OptimizerConfig = OptimizerConfig(),
        t_max: float = 0.999,
        seed: int = 0,
        latent_codes: int = 1,
        latent_layers: int = 0,
        time_conditioning: bool = True,
        antithetic: bool = False,
    ) -> None:
        super().__init__()
        if latent_codes < 1:
            raise ValueError(f"latent_codes must be >= 1 (1: a factorised posterior), got {latent_codes}.")
        self.optimizer_config = OptimizerConfig.of(optimizer)
        self.seed = seed
        self.path = MixturePath(make_source(source, vocab_size), scheduler or PolynomialScheduler())
        self.net = DiffusionTransformer(
            backbone or TransformerConfig(), self.path.source.input_vocab_size, vocab_size, seq_len,
            step_size_conditioning=self.step_size_conditioning, time_conditioning=time_conditioning,
            latent_codes=latent_codes if latent_codes > 1 else 0, latent_layers=latent_layers,
        )
        self.t_max = t_max
        self.antithetic = antithetic
        self.jump_policy: JumpPolicy = BlindJump()

    @property
    def latent_codes(self) -> int:
        """M, the number of latent codes of a mixture posterior; 1 for a factorised one."""
        return max(self.net.latent_codes, 1)

    def every_code(self, batch: int, device) -> torch.Tensor:
        """Every latent code for each of ``batch`` sequences, [M, B]: z[m, b] = m."""
        return torch.arange(self.latent_codes, device=device)[:, None].expand(-1, batch)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, h: torch.Tensor | None = None,
                z: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of p(x1 | x_t, t[, h]) [B, L, V], with what the source fixes carried over.

        A mixture posterior (``latent_codes`` M > 1) gives p(x1 | x_t, t, h, z) for the codes ``z`` ([B], or [M', B]
        for logits [M', B, L, V]); without z, the log of its marginal per position, log mean_m p(. | z = m)."""
        h = h if self.step_size_conditioning else None
        if self.latent_codes == 1 or z is not None:
            return self._carry_over(self.net(x_t, t, h, z=z), x_t)
        log_p = torch.log_softmax(self.net(x_t, t, h, z=self.every_code(x_t.shape[0], x_t.device)).float(), dim=-1)
        return self._carry_over(torch.logsumexp(log_p, dim=0) - math.log(self.latent_codes), x_t)

    def _carry_over(self, logits: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        if logits.dim() == x_t.dim() + 1:
            return self.path.source.carry_over(logits, x_t)
        rows = logits.shape[0]
        return self.path.source.carry_over(logits.flatten(0, 1), x_t.repeat(rows, 1)).unflatten(0, (rows, -1))

    def draw_codes(self, batch: int, generator: torch.Generator | None, device) -> torch.Tensor | None:
        """One latent code per sequence, z ~ Uniform{0..M-1} [B]; None for a factorised posterior (no draw)."""
        if self.latent_codes == 1:
            return None
        return torch.randint(self.latent_codes, (batch,), generator=generator, device=device)

    def draw_times(self, batch: int, generator: torch.Generator | None, device, high: float = 1.0) -> torch.Tensor:
        """Training times t [B] ~ U(0, high), antithetic within the batch when so configured."""
        return time_draws.draw_times(batch, generator, device, high, self.antithetic)

    def path_sample(self, x1: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(t ~ U(0, t_max) [B] by :meth:`draw_times`, x_t ~ p_t(. | x1))."""
        t = self.draw_times(x1.shape[0], generator, x1.device, self.t_max)
        return t, self.path.sample(x1, t, generator)

    def validation_step(self, x1: torch.Tensor, batch_idx: int) -> None:
        g = self.validation_generator(batch_idx, x1.device)
        t, x_t = self.path_sample(x1, g)
        logits = self(x_t, t, self.validation_step_size(t))
        self.log("val/ce", masked_cross_entropy(logits, x1, self.path.source.unsettled(x_t)), prog_bar=True)
        self.log("val/nelbo", generalized_kl(logits, x1, x_t, t, self.path).mean(), prog_bar=True)

    def validation_step_size(self, t: torch.Tensor) -> torch.Tensor | None:
        """h [B] of the validation loss: None, for a denoiser that does not condition on h (a teacher, MDLM)."""
        return None

    #: the samplers :meth:`sample` offers; the first is the default. Subclasses (plugins) may add their own.
    #: ``first_hitting`` (mask source, blind jumps) draws the ancestral sampler's distribution with <= L forwards.
    samplers: tuple[str, ...] = ("ancestral", "first_hitting")

    def sampling_denoiser(self, sampler: str):
        """The denoiser ``(x, t, h) -> logits`` that ``sampler`` calls: the module itself (a plugin may wrap it)."""
        return self

    def sampling_step(self, sampler: str, jump: JumpPolicy) -> Step:
        """One step x_t -> x_{t+h} of ``sampler``: the denoiser's p(x1 | x_t, t, h) drawn by ``jump`` on the path.
        A model family with another kind of kernel overrides this (and draws with ``jump.transition``). A mixture
        posterior draws one latent code per sequence and step, then jumps with p(x1 | x_t, t, h, z)."""
        denoiser = self.sampling_denoiser(sampler)
        if self.latent_codes == 1:
            return denoiser_step(denoiser, self.path, jump)

        def step(x: torch.Tensor, t: torch.Tensor, h: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            z = self.draw_codes(x.shape[0], generator, x.device)
            return jump(x, torch.softmax(denoiser(x, t, h, z=z).float(), dim=-1), t, h, self.path, generator)

        return step

    @torch.no_grad()
    def sample(self, num_samples: int, steps: int, generator: torch.Generator | None = None,
               batch_size: int | None = None, progress: bool = False, jump: JumpPolicy | None = None,
               sampler: str | None = None, step_sizes: Sequence[float] | None = None,
               given: Given | None = None) -> torch.Tensor:
        """``steps``-step samples, LongTensor[num_samples, seq_len], drawn with ``jump`` or ``self.jump_policy``
        by ``sampler`` (one of :attr:`samplers`, default the first), on the uniform grid h = 1/steps or on the
        grid ``step_sizes`` (one size per step, summing to one). With ``given`` ([num_samples, seq_len] known tokens)
        sample b holds the known tokens of row b from t = 0 and every jump keeps them (:class:`ConditionedJump`)."""
        sampler = sampler or self.samplers[0]
        if sampler not in self.samplers:
            raise ValueError(f"{type(self).__name__} has no sampler {sampler!r}: choose one of {list(self.samplers)}.")
        check_given(given, num_samples, self.hparams.seq_len, type(self).__name__)
        was_training = self.training
        self.eval()
        jump = jump or self.jump_policy
        description = f"{self.checkpoint_kind} {sampler} {steps} steps"
        try:
            if sampler == "first_hitting":
                if step_sizes is not None:
                    raise ValueError("The first-hitting sampler draws on the uniform grid only: use the ancestral "
                                     "sampler with step sizes.")
                if self.latent_codes > 1:
                    raise ValueError("The first-hitting sampler draws from a factorised posterior; this model is a "
                                     f"mixture over {self.latent_codes} latent codes: use the ancestral sampler.")
                return sample_first_hitting(self.sampling_denoiser(sampler), self.path, jump, num_samples,
                                            self.hparams.seq_len, steps, generator, self.device, batch_size, progress,
                                            description, given)
            if given is not None:
                return sample_chain_given(lambda rows: self.sampling_step(sampler, ConditionedJump(jump, rows)),
                                          given_start(self.path.source.sample), given, steps, generator, self.device,
                                          batch_size, progress, description, step_sizes)
            return sample_chain(self.sampling_step(sampler, jump), self.path.source.sample, num_samples,
                                self.hparams.seq_len, steps, generator, self.device, batch_size, progress, description,
                                step_sizes)
        finally:
            self.train(was_training)

