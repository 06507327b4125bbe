"""FLMModule: a flow language model, flow matching on one-hot encodings with a cross-entropy denoiser.

Training, per sequence: tau ~ U[0, 1] (antithetic within the batch), gamma = gamma(tau) of the decoding-error time,
x_gamma = (1 - gamma) eps + gamma onehot(x1), and the denoiser f(x_gamma, tau) [B, L, V] (the shared transformer
fed the continuous input through its embedding matrix) is trained by cross-entropy on every position:

    loss = E_{tau, eps} mean_i -log softmax f(x_gamma, tau)_i[x1^i].

softmax f estimates D(x, tau) = E[onehot(x1) | x_gamma = x], which gives the probability-flow ODE its velocity
(D - x) / (1 - gamma); sampling integrates it with Euler steps on the uniform tau grid (:mod:`tsdfm_flm.samplers`).
"""

from __future__ import annotations

from typing import Optional

import lightning as L
import torch
from torch import Tensor

from lightning_tsdfm.conditioning import Given, check_given
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.training import TrainingMixin
from lightning_tsdfm.sampling import sample_chain, sample_chain_given
from lightning_tsdfm.time_draws import draw_times as draw_batch_times
from tsdfm_flm.conditioning import clamp_one_hots, conditioned_denoiser, conditioned_step
from tsdfm_flm.interpolant import OneHotGaussianPath, one_hot_interpolant
from tsdfm_flm.samplers import Denoiser, Step, euler_sampling_step

#: why TrajectoryShaper cannot shape FLM or FMLM (read by lightning_tsdfm.shaping.check_shapeable)
NOT_SHAPEABLE = (
    "its states are continuous (noisy one-hot encodings in R^V per position, on a Gaussian path, not tokens on a "
    "MixturePath), so its steps make no discrete jumps for a compass to choose among, and FMLM's distillation "
    "targets compose deterministic flow-map midpoints X_{s,u}, which leave no candidates to select (the semigroup "
    "identity holds only at the exact midpoint). Train it without the callback."
)


def sampling_temperature(jump, module: L.LightningModule) -> float:
    """The temperature T of the denoiser's softmax, softmax(f / T), from the blind jump ``tsdfm sample`` passes;
    a guided jump is refused: continuous states have no candidates to guide."""
    if jump is None:
        return 1.0
    if type(jump) is not BlindJump:
        raise UserError(f"{type(module).__name__} samples continuous states, so there is no discrete jump for "
                        f"{type(jump).__name__} to guide: sample it without --shaped.")
    return jump.temperature


class FLMModule(TrainingMixin, DataCardMixin, L.LightningModule):
    """Flow language model: continuous one-hot flow matching with a cross-entropy denoiser.

    Args:
        vocab_size: data vocabulary (linked from the DataModule); the state of a position lives in R^vocab_size.
        seq_len: sequence length (linked from the DataModule).
        backbone: the transformer; its embedding matrix takes the continuous input (x @ E).
        logit_soft_cap: c of c * tanh(logits / c) before the softmax (None: no cap; the v2 models use 30).
        antithetic: low-discrepancy times within a batch, tau_b = (u + b / B) mod 1.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
    """

    checkpoint_kind = "flm"
    step_size_conditioning = False
    samplers: tuple[str, ...] = ("euler",)
    not_shapeable_because = NOT_SHAPEABLE

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        backbone: Optional[TransformerConfig] = None,
        logit_soft_cap: Optional[float] = None,
        antithetic: bool = True,
        optimizer: OptimizerConfig = OptimizerConfig(),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.optimizer_config = OptimizerConfig.of(optimizer)
        self.seed = seed
        self.path = OneHotGaussianPath(vocab_size)
        self.net = DiffusionTransformer(backbone or TransformerConfig(), vocab_size, vocab_size, seq_len,
                                        step_size_conditioning=self.step_size_conditioning)
        self.logit_soft_cap = logit_soft_cap  # attributes, not hparams: a subclass saves its own hparams
        self.antithetic = antithetic

    @property
    def vocab_size(self) -> int:
        return self.hparams.vocab_size

    @property
    def seq_len(self) -> int:
        return self.hparams.seq_len

    # ---- the denoiser

    def forward(self, x: Tensor, tau: Tensor, h: Tensor | None = None) -> Tensor:
        """Logits [B, L, V] of D(x, tau) (of delta(x; tau, tau + h) for a two-time FMLM; FLM ignores h)."""
        logits = self.net(x, tau, h if self.step_size_conditioning else None)
        if self.logit_soft_cap:
            logits = self.logit_soft_cap * torch.tanh(logits / self.logit_soft_cap)
        return logits

    def denoise(self, x: Tensor, tau: Tensor, h: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        """Probabilities softmax(f / T) [B, L, V], float32."""
        return torch.softmax(self(x, tau, h).float() / temperature, dim=-1)

    # ---- training

    def draw_times(self, batch: int, generator: torch.Generator, device) -> Tensor:
        """tau [B] ~ U[0, 1]; antithetic: one u, tau_b = (u + b / B) mod 1."""
        return draw_batch_times(batch, generator, device, antithetic=self.antithetic)

    def loss(self, x1: Tensor, generator: torch.Generator) -> Tensor:
        """Cross-entropy of the denoiser at x_gamma(tau) on every position, nats per token."""
        tau = self.draw_times(x1.shape[0], generator, x1.device)
        x = self.path.sample(x1, tau, generator)
        logits = self(x, tau)
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), x1.flatten())

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        loss = self.loss(x1, self.step_generator(x1.device))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, x1: Tensor, batch_idx: int) -> None:
        self.log("val/ce", self.loss(x1, self.validation_generator(batch_idx, x1.device)), prog_bar=True)

    # ---- sampling

    def sampler_settings(self, sampler: str) -> dict:
        """What a result row records about ``sampler`` beyond its name (FMLM: its stochasticity g)."""
        return {}

    def tempered_denoiser(self, temperature: float = 1.0, given: Given | None = None) -> Denoiser:
        """softmax(f(z, tau, h) / T), delta(y) at the known positions of ``given`` (:mod:`tsdfm_flm.conditioning`)."""
        denoiser = lambda z, tau, h: self.denoise(z, tau, h, temperature)  # noqa: E731 - FLM ignores h
        return denoiser if given is None else conditioned_denoiser(denoiser, given)

    def tempered_step(self, sampler: str, temperature: float = 1.0, given: Given | None = None) -> Step:
        """One step z_tau -> z_{tau+h} of ``sampler`` at ``temperature`` (the last returns token ids), keeping the known
        tokens of ``given`` as one-hots. Not the library's ``sampling_step(sampler, jump)``: FLM's states are
        continuous, so no jump policy draws them."""
        self.check_sampler(sampler)
        return self.conditioned(euler_sampling_step(self.tempered_denoiser(temperature, given), self.path), given)

    @staticmethod
    def conditioned(step: Step, given: Given | None) -> Step:
        return step if given is None else conditioned_step(step, given)

    def check_sampler(self, sampler: str | None) -> str:
        sampler = sampler or self.samplers[0]
        if sampler not in self.samplers:
            raise ValueError(f"{type(self).__name__} has no sampler {sampler!r}: choose one of {list(self.samplers)}.")
        return sampler

    @torch.no_grad()
    def sample(self, num_samples: int, steps: int, generator: torch.Generator | None = None,
               batch_size: int | None = None, progress: bool = False, jump=None, sampler: str | None = None,
               given: Given | None = None) -> Tensor:
        """``steps``-step samples, LongTensor[num_samples, seq_len]: z_0 ~ N(0, I), the ``sampler``'s steps on the
        tau grid, argmax at the end. ``jump`` may be a blind jump, whose temperature T tempers the denoiser. With
        ``given`` ([num_samples, seq_len] known tokens) the known positions hold their one-hots from z_0 on
        (:mod:`tsdfm_flm.conditioning`)."""
        sampler = self.check_sampler(sampler)
        temperature = sampling_temperature(jump, self)
        check_given(given, num_samples, self.hparams.seq_len, type(self).__name__)
        was_training = self.training
        self.eval()
        description = f"{self.checkpoint_kind} {sampler} {steps} steps"
        try:
            if given is not None:
                def start_for(rows: Given):
                    return lambda shape, g, device: clamp_one_hots(self.path.source.sample(shape, g, device), rows)

                return sample_chain_given(lambda rows: self.tempered_step(sampler, temperature, rows), start_for, given,
                                          steps, generator, self.device, batch_size, progress, description)
            return sample_chain(self.tempered_step(sampler, temperature), self.path.source.sample, num_samples,
                                self.hparams.seq_len, steps, generator, self.device, batch_size, progress,
                                description)
        finally:
            self.train(was_training)
