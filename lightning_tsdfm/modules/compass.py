"""CompassModule: the energy compass E_psi(x, t), trained by generation-aware noise-contrastive estimation
against a frozen teacher: a TeacherModule, or any shapeable model whose jumps are to be shaped (MDLM, SDTT, SEDD,
a plugin's or a foreign module registered with the checkpoint loader), named by its checkpoint kind.

A small bidirectional transformer gives one energy per token, e_psi(x, t) in R^L (lower = more coherent);
the sequence energy is their mean, E_psi(x, t) = (1/L) sum_i e_psi(x, t)_i. Per training sequence:

- positive: data x1, t ~ U(0, t_max), x+ ~ p_t(. | x1) (a path sample of real data);
- negative, ``jump`` (what trajectory shaping scores): j ~ U{1..J}, h = 2^-j, s = max(t - h, 0),
  x_s ~ p_s(. | x1), and one blind teacher jump x- = BlindJump(x_s, p_theta(. | x_s, s), s, t - s);
- negative, ``rollout``: x_0 ~ source, then n blind teacher jumps of size t/n from time 0 to t.

A teacher jump is the model's own: its posterior or next-state kernel drawn by the compass's blind jump through the model's
``sampling_step(sampler, jump)`` (a denoiser's p_theta(. | x_s, s) on its mixture path; SEDD's next-state kernel
with ``jump.transition``; see :mod:`lightning_tsdfm.modules.model_jumps`). For a TeacherModule this is the
formula above, bit for bit.

Either way x- lies at the same time t as x+ and, with the mask source, has the same law of how many
positions are revealed (1 - kappa(t) of them stay masked), so only *what* the teacher revealed tells them
apart: the compass learns the errors that generation makes at that noise level. Losses, with logit -E
(P(real | x, t) = sigmoid(-E)):

- ``logistic``: mean softplus(E(x+, t)) + mean softplus(-E(x-, t));
- ``infonce``: M negatives per positive, mean -log softmax(-E(x+), -E(x-_1), ..., -E(x-_M))_0.

The frozen teacher is held by reference (never a parameter, never in the compass checkpoint); its
hyper-parameters (for another kind of model: completed with its declared vocabulary, length, source, schedule
exponent and t_max) are copied in, so a saved compass loads and scores without the teacher file.
Validation logs ``val/loss`` and the held-out NCE accuracy, the fraction of (x+, x-) pairs with
E(x+) < E(x-), overall (``val/nce_acc``) and per time bin (``val/nce_acc/t<lo>-<hi>``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info

from lightning_tsdfm.checkpoints.frozen import FrozenTeacherMixin
from lightning_tsdfm.checkpoints.teacher import adopt
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.modules.model_jumps import TEACHER_KIND, check_sampler_of, own_jump, read_jumping_model
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.training import TrainingMixin
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source

#: about 11% of the synthetic tiny teacher (1.28M) and 8% of the text tiny teacher (3.26M) parameters
DEFAULT_BACKBONE = TransformerConfig(hidden_size=64, num_layers=2, num_heads=2, mlp_ratio=4, cond_size=32)


def logistic_nce(e_pos: torch.Tensor, e_neg: torch.Tensor) -> torch.Tensor:
    """mean softplus(E+) + mean softplus(-E-): binary NCE with logit -E. e_pos: [B], e_neg: [B, M]."""
    return F.softplus(e_pos.float()).mean() + F.softplus(-e_neg.float()).mean()


def info_nce(e_pos: torch.Tensor, e_neg: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over logits -[E+, E-_1..E-_M] with the positive at index 0. e_pos: [B], e_neg: [B, M]."""
    logits = -torch.cat([e_pos[:, None], e_neg], dim=1).float()
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


LOSSES = {"logistic": logistic_nce, "infonce": info_nce}


class CompassModule(FrozenTeacherMixin, TrainingMixin, DataCardMixin, L.LightningModule):
    """Energy compass E_psi(x, t) trained against a frozen teacher checkpoint.

    Args:
        teacher_checkpoint: the checkpoint of the model whose jumps make the negatives, written by `tsdfm fit` or
            loadable by :func:`~lightning_tsdfm.modules.load_module` (its source, schedule and data card are copied).
        vocab_size: data vocabulary (linked from the DataModule); must equal the teacher's.
        seq_len: sequence length (linked from the DataModule); at most the teacher's. The compass is
            built for the teacher's seq_len, which its hparams record.
        backbone: architecture of the compass transformer (default :data:`DEFAULT_BACKBONE`, 5-15% of a tiny teacher).
        negatives: ``jump`` (one blind teacher jump from an earlier path sample) or ``rollout`` (blind
            teacher jumps from the source).
        negative_levels: J: ``jump`` negatives start h = 2^-j earlier, j ~ U{1..J} (J=6: h in 1/2..1/64).
        rollout_steps: teacher jumps of a ``rollout`` negative, from time 0 to t.
        loss: ``logistic`` (binary NCE) or ``infonce`` (one positive against ``num_negatives``).
        num_negatives: M, negatives per positive.
        num_time_bins: equal bins of [0, t_max] for the validation accuracy.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
        teacher_kind: the checkpoint kind of ``teacher_checkpoint``: ``teacher`` (a TeacherModule), or any
            shapeable model's (``mdlm``, ``mdlm_sdtt``, ``sedd``, ``student``, a plugin's), whose own jumps are then
            the negatives.
        teacher_sampler: which of the model's samplers makes its jumps (default: its first, e.g. MDLM's
            ``ancestral``, SEDD's ``hparams.sampler``).
        teacher_hparams: filled in from the teacher checkpoint; lets a saved compass load without its teacher.
    """

    checkpoint_kind = "compass"
    kind = "nce"  # the kind of energy, in result rows
    scores = "state"  # it scores the noised states x_{t+h}

    def __init__(
        self,
        teacher_checkpoint: str,
        vocab_size: int,
        seq_len: int,
        backbone: TransformerConfig | None = None,
        negatives: Literal["jump", "rollout"] = "jump",
        negative_levels: int = 6,
        rollout_steps: int = 4,
        loss: Literal["logistic", "infonce"] = "logistic",
        num_negatives: int = 1,
        num_time_bins: int = 4,
        optimizer: OptimizerConfig = OptimizerConfig(warmup_steps=100),
        seed: int = 0,
        teacher_kind: str = TEACHER_KIND,
        teacher_sampler: str | None = None,
        teacher_hparams: dict | None = None,
    ) -> None:
        super().__init__()
        _check_settings(negatives, loss, negative_levels=negative_levels, rollout_steps=rollout_steps,
                        num_negatives=num_negatives, num_time_bins=num_time_bins)
        teacher = read_jumping_model(teacher_checkpoint, teacher_kind, vocab_size, seq_len, teacher_hparams, teacher_sampler)
        backbone = backbone or replace(DEFAULT_BACKBONE)
        self.optimizer_config, self.seed = OptimizerConfig.of(optimizer), seed
        self.save_hyperparameters()
        adopt(self, teacher, weights=False)
        described = self.hparams.teacher_hparams
        self.hparams.update(seq_len=described["seq_len"], source=described["source"],
                            scheduler_exponent=described["scheduler_exponent"], t_max=described.get("t_max", 0.999))
        exponent = self.hparams.scheduler_exponent  # None: the model's schedule is not t^n (see model_path)
        self.path = MixturePath(make_source(self.hparams.source, vocab_size),
                                None if exponent is None else PolynomialScheduler(exponent))
        self.net = DiffusionTransformer(backbone, self.path.source.input_vocab_size, 1, self.hparams.seq_len)
        self.blind_jump = BlindJump()

    # ---- the energy

    def energies(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per-token energies e_psi(x, t) [B, L] of states x [B, L] at times t [B]; lower = more coherent."""
        return self.net(x, t)[..., 0]

    forward = energies

    def energy(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sequence energy E_psi(x, t) [B]: the mean of the per-token energies."""
        return self.energies(x, t).mean(dim=-1)

    @property
    def source_name(self) -> str:
        """The source (``mask`` or ``uniform``) of the states the compass scores: the teacher's."""
        return self.path.source.name

    # ---- the frozen teacher and the negatives

    def parameter_ratio(self) -> float:
        """Compass parameters / teacher parameters (the target is about 5-15%)."""
        return _num_parameters(self) / _num_parameters(self.teacher())

    def teacher_kind(self) -> str:
        """The checkpoint kind of the model whose jumps are the negatives (``hparams.teacher_kind``)."""
        return self.hparams.get("teacher_kind", TEACHER_KIND)

    def hold_teacher(self, module: torch.nn.Module, fingerprint: str | None = None) -> None:
        check_sampler_of(module, self.hparams.get("teacher_sampler"))
        super().hold_teacher(module, fingerprint)

    def model_path(self) -> MixturePath:
        """The path of the positives and of the states the teacher jumps from: the frozen model's own, so a model
        whose schedule is not t^n is matched too (for a TeacherModule it equals ``self.path``)."""
        return self.teacher().path

    def _teacher_jump(self, x: torch.Tensor, s: torch.Tensor, h: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x_{s+h}: one of the teacher's own jumps from x at times s, drawn by ``self.blind_jump``."""
        step = own_jump(self.teacher(), self.blind_jump, self.hparams.get("teacher_sampler"))
        return step(x, s, h, generator)

    @torch.no_grad()
    def negatives(self, x1: torch.Tensor, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Teacher-generated states at times t [B], one per row of x1 [B, L] (see the module docstring)."""
        if self.hparams.negatives == "jump":
            j = torch.randint(1, self.hparams.negative_levels + 1, t.shape, device=t.device, generator=generator)
            s = (t - 2.0 ** -j.to(t.dtype)).clamp_min(0.0)
            return self._teacher_jump(self.model_path().sample(x1, s, generator), s, t - s, generator)
        n = self.hparams.rollout_steps
        x = self.path.source.sample(tuple(x1.shape), generator, x1.device)
        for k in range(n):
            x = self._teacher_jump(x, t * k / n, t / n, generator)
        return x

    def contrastive_batch(self, x1: torch.Tensor, t: torch.Tensor, generator: torch.Generator):
        """(x+ [B, L], x- [B, M, L]): a path sample of x1 and M teacher-generated states, all at times t [B]."""
        m = self.hparams.num_negatives
        x_pos = self.model_path().sample(x1, t, generator)
        x_neg = self.negatives(x1.repeat_interleave(m, 0), t.repeat_interleave(m), generator)
        return x_pos, x_neg.view(x1.shape[0], m, -1)

    def contrastive_energies(self, x_pos: torch.Tensor, x_neg: torch.Tensor, t: torch.Tensor):
        """(E+ [B], E- [B, M]) in one forward pass."""
        batch, m, _ = x_neg.shape
        e = self.energy(torch.cat([x_pos, x_neg.flatten(0, 1)]), torch.cat([t, t.repeat_interleave(m)]))
        return e[:batch], e[batch:].view(batch, m)

    # ---- training and validation

    def on_fit_start(self) -> None:
        rank_zero_info(f"CompassModule: {_num_parameters(self):,} parameters, "
                       f"{self.parameter_ratio():.1%} of the teacher's.")

    def training_step(self, x1: torch.Tensor, batch_idx: int) -> torch.Tensor:
        g = self.step_generator(x1.device)
        t = torch.rand(x1.shape[0], device=x1.device, generator=g) * self.hparams.t_max
        e_pos, e_neg = self.contrastive_energies(*self.contrastive_batch(x1, t, g), t)
        loss = LOSSES[self.hparams.loss](e_pos, e_neg)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/nce_acc", (e_pos[:, None] < e_neg).float().mean())
        self.log("train/energy_gap", (e_neg.mean() - e_pos.mean()).detach())  # > 0 when negatives score worse
        return loss

    def validation_step(self, x1: torch.Tensor, batch_idx: int) -> None:
        g = self.validation_generator(batch_idx, x1.device)
        batch, t_max, bins = x1.shape[0], self.hparams.t_max, self.hparams.num_time_bins
        # stratified times: one per slice of [0, t_max], so every bin is measured
        t = (torch.arange(batch, device=x1.device) + torch.rand(batch, device=x1.device, generator=g)) * t_max / batch
        e_pos, e_neg = self.contrastive_energies(*self.contrastive_batch(x1, t, g), t)
        correct = (e_pos[:, None] < e_neg).float().mean(dim=1)
        self.log("val/loss", LOSSES[self.hparams.loss](e_pos, e_neg), prog_bar=True, batch_size=batch)
        self.log("val/nce_acc", correct.mean(), prog_bar=True, batch_size=batch)
        which = (t / t_max * bins).long().clamp_max(bins - 1)
        for b in range(bins):
            in_bin = which == b
            if in_bin.any():
                name = f"val/nce_acc/t{b * t_max / bins:.2f}-{(b + 1) * t_max / bins:.2f}"
                self.log(name, correct[in_bin].mean(), batch_size=int(in_bin.sum()))


def _check_settings(negatives: str, loss: str, **positive: int) -> None:
    if negatives not in ("jump", "rollout"):
        raise ValueError(f"Unknown negatives {negatives!r}: choose 'jump' or 'rollout'.")
    if loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}: choose one of {sorted(LOSSES)}.")
    for name, value in positive.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}.")


def _num_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
