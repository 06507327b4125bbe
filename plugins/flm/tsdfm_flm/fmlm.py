"""FMLMModule: a frozen FLM distilled into a two-time denoiser delta(x; s, t), whose flow map
X_{s,t}(x) = (1 - gamma_t)/(1 - gamma_s) x + (gamma_t - gamma_s)/(1 - gamma_s) delta(x; s, t) jumps from s to t
in one network call, by the semigroup objective:

- diagonal pairs s = t = tau: target D_tau(x_s) of the frozen FLM teacher;
- off-diagonal pairs (d ~ U, s = U'(1 - d), t = s + d, u = (s + t)/2, in tau) and boundary pairs (0, 1) at a fixed
  fraction: target lambda delta(x_s; s, u) + (1 - lambda) delta(X_{s,u}(x_s); u, t) of the online student,
  computed without gradient, lambda = (1 - gamma_t)(gamma_u - gamma_s) / ((1 - gamma_u)(gamma_t - gamma_s));

with x_s = (1 - gamma_s) eps + gamma_s onehot(x1) and loss E[-sum_v target_v log delta(x_s; s, t)_v].
The student is the teacher's transformer plus the backbone's zero-initialised step embedding, fed t - s: a fresh
student computes its teacher's D on the diagonal (and everywhere). The teacher is held by reference, never in the
student's checkpoint; the student's EMA (``TargetEMA``) is what validation sees and what training leaves.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.modules import read_checkpoint_header
from lightning_tsdfm.modules.ema import TargetEMA
from lightning_tsdfm.modules.frozen import FrozenTeacherMixin
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.teacher_checkpoint import TeacherCheckpoint, adopt, read_teacher
from tsdfm_flm.flow_map import flow_map, semigroup_target, semigroup_weight
from tsdfm_flm.module import FLMModule
from tsdfm_flm.samplers import Step, flow_map_sampling_step

FLOW_MAP = "flow_map"


def read_flm_teacher(path: str, vocab_size: int, seq_len: int, saved_hparams: dict | None) -> TeacherCheckpoint:
    """The FLM teacher at ``path``; any other checkpoint (a discrete teacher, MDLM, ...) is refused with the reason."""
    if saved_hparams is None:
        kind = read_checkpoint_header(path)["kind"]
        if kind != FLMModule.checkpoint_kind:
            raise UserError(
                f"{path} is a {kind!r} checkpoint, a model of discrete tokens: FMLM distils the continuous flow of an "
                f"FLM ('flm' checkpoint, tsdfm_flm.FLMModule), whose denoiser reads noisy one-hot encodings. Train "
                f"an FLM first (configs/synthetic_flm.yaml) and pass its last.ckpt as teacher_checkpoint."
            )
    return read_teacher(path, vocab_size, seq_len, saved_hparams, kinds=FLMModule.checkpoint_kind)


class FMLMModule(FrozenTeacherMixin, FLMModule):
    """Few-step flow-map language model distilled from an FLM checkpoint.

    Args:
        teacher_checkpoint: an FLM checkpoint written by `tsdfm fit` (architecture and weights).
        vocab_size: data vocabulary (linked from the DataModule); must equal the teacher's.
        seq_len: sequence length (linked from the DataModule); at most the teacher's.
        diagonal_fraction: share of each batch on the diagonal s = t (target: the teacher).
        boundary_fraction: share of each batch on the pair (0, 1) (default (1 - diagonal_fraction) / 32).
        sampling_noise: g of the ``flow_map`` sampler, in [0, 1] (0: deterministic flow map); ``flow_map_g<g>``
            names the sampler with another g.
        ema_decay: decay of the EMA of the student.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
        teacher_hparams: filled in from the teacher checkpoint; lets a saved student load without its teacher.
    """

    checkpoint_kind = "fmlm"
    step_size_conditioning = True
    samplers = (FLOW_MAP,)

    def __init__(
        self,
        teacher_checkpoint: str,
        vocab_size: int,
        seq_len: int,
        diagonal_fraction: float = 0.5,
        boundary_fraction: Optional[float] = None,
        sampling_noise: float = 0.8,
        ema_decay: float = 0.999,
        optimizer: OptimizerConfig = OptimizerConfig(lr=3e-4, warmup_steps=100),
        seed: int = 0,
        teacher_hparams: Optional[dict] = None,
    ) -> None:
        teacher = read_flm_teacher(teacher_checkpoint, vocab_size, seq_len, teacher_hparams)
        boundary = (1 - diagonal_fraction) / 32 if boundary_fraction is None else boundary_fraction
        if not (0 <= diagonal_fraction and 0 <= boundary and diagonal_fraction + boundary <= 1):
            raise ValueError(f"diagonal_fraction={diagonal_fraction} and boundary_fraction={boundary} must be >= 0 "
                             f"with a sum <= 1 (the rest of each batch is off-diagonal).")
        super().__init__(vocab_size, teacher.hparams["seq_len"], backbone=teacher.backbone,
                         logit_soft_cap=teacher.hparams.get("logit_soft_cap"),
                         antithetic=teacher.hparams.get("antithetic", True), optimizer=optimizer, seed=seed)
        self.save_hyperparameters()
        self.check_sampler(FLOW_MAP)  # sampling_noise in [0, 1]
        self.boundary_fraction = boundary
        adopt(self, teacher, new_parameters=("net.step_embed.",))  # a fresh student equals its teacher
        self._ema = TargetEMA(decay=ema_decay)

    def teacher_kind(self) -> str:
        return FLMModule.checkpoint_kind

    def configure_callbacks(self):
        return [self._ema]

    # ---- the pairs and their targets

    def pair_times(self, batch: int, generator: torch.Generator, device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(tau_s, tau_u, tau_t, diagonal) [B]: the first rows diagonal (s = u = t, antithetic), then off-diagonal
        pairs, then the boundary pairs (0, 1); u = (s + t) / 2."""
        diagonal = round(self.hparams.diagonal_fraction * batch)
        boundary = min(round(self.boundary_fraction * batch), batch - diagonal)
        off = batch - diagonal - boundary
        tau = self.draw_times(diagonal, generator, device) if diagonal else torch.zeros(0, device=device)
        span = torch.rand(off, device=device, generator=generator)
        start = torch.rand(off, device=device, generator=generator) * (1 - span)
        s = torch.cat([tau, start, torch.zeros(boundary, device=device)])
        t = torch.cat([tau, (start + span).clamp_max(1.0), torch.ones(boundary, device=device)])
        return s, (s + t) / 2, t, torch.arange(batch, device=device) < diagonal

    @torch.no_grad()
    def semigroup_targets(self, x_s: Tensor, s: Tensor, u: Tensor, t: Tensor, diagonal: Tensor) -> Tensor:
        """Targets [B, L, V]: the teacher's D_s(x_s) on the diagonal, the online student's two-step composition
        lambda delta(x_s; s, u) + (1 - lambda) delta(X_{s,u}(x_s); u, t) elsewhere."""
        target = torch.empty(x_s.shape, device=x_s.device, dtype=torch.float32)
        if diagonal.any():
            target[diagonal] = self.teacher().denoise(x_s[diagonal], s[diagonal])
        off = ~diagonal
        if off.any():
            x, s, u, t = x_s[off], s[off], u[off], t[off]
            gamma_s, gamma_u, gamma_t = (self.path.time.gamma(tau) for tau in (s, u, t))
            delta_su = self.denoise(x, s, u - s)
            midpoint = flow_map(x, delta_su, gamma_s, gamma_u)
            delta_ut = self.denoise(midpoint, u, t - u)
            target[off] = semigroup_target(delta_su, delta_ut, semigroup_weight(gamma_s, gamma_u, gamma_t))
        return target

    def distillation_loss(self, x1: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(-sum_v target_v log delta(x_s; s, t)_v averaged over positions [B], which rows are diagonal [B])."""
        s, u, t, diagonal = self.pair_times(x1.shape[0], generator, x1.device)
        x_s = self.path.sample(x1, s, generator)
        target = self.semigroup_targets(x_s, s, u, t, diagonal)
        log_delta = torch.log_softmax(self(x_s, s, t - s).float(), dim=-1)
        return -(target * log_delta).sum(-1).mean(-1), diagonal

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        per_sequence, diagonal = self.distillation_loss(x1, self.step_generator(x1.device))
        loss = per_sequence.mean()
        self.log("train/loss", loss, prog_bar=True)
        if diagonal.any() and (~diagonal).any():
            self.log("train/diagonal", per_sequence[diagonal].mean())
            self.log("train/off_diagonal", per_sequence[~diagonal].mean())
        return loss

    def validation_step(self, x1: Tensor, batch_idx: int) -> None:
        """``val/ce``: the diagonal denoiser's cross-entropy against the data (FLM's ``val/ce``); ``val/loss``: the
        distillation objective."""
        super().validation_step(x1, batch_idx)
        generator = self.validation_generator(batch_idx, x1.device, offset=1)
        self.log("val/loss", self.distillation_loss(x1, generator)[0].mean())

    def loss(self, x1: Tensor, generator: torch.Generator) -> Tensor:
        """Cross-entropy of the diagonal delta(x; tau, tau) against the data, as FLM's loss."""
        tau = self.draw_times(x1.shape[0], generator, x1.device)
        logits = self(self.path.sample(x1, tau, generator), tau, torch.zeros_like(tau))
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), x1.flatten())

    # ---- sampling

    def sampling_noise(self, sampler: str) -> float:
        """g of ``sampler``: ``flow_map`` (the trained default, hparams.sampling_noise) or ``flow_map_g<g>``."""
        if sampler == FLOW_MAP:
            noise = self.hparams.sampling_noise
        elif sampler.startswith(FLOW_MAP + "_g"):
            try:
                noise = float(sampler[len(FLOW_MAP) + 2:])
            except ValueError:
                noise = -1.0
        else:
            raise ValueError(f"FMLMModule has no sampler {sampler!r}: choose 'flow_map' (g = sampling_noise = "
                             f"{self.hparams.sampling_noise}) or 'flow_map_g<g>', e.g. flow_map_g0 (deterministic).")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"The flow-map sampler's stochasticity g must lie in [0, 1]: {sampler!r} gives {noise}.")
        return noise

    def check_sampler(self, sampler: str | None) -> str:
        sampler = sampler or FLOW_MAP
        self.sampling_noise(sampler)
        return sampler

    def sampler_settings(self, sampler: str) -> dict:
        return {"g": self.sampling_noise(self.check_sampler(sampler))}

    def tempered_step(self, sampler: str, temperature: float = 1.0, given: Given | None = None) -> Step:
        step = flow_map_sampling_step(self.tempered_denoiser(temperature, given), self.path,
                                      self.sampling_noise(self.check_sampler(sampler)))
        return self.conditioned(step, given)
