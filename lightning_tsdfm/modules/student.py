"""StudentModule: a few-step student p_phi(x1 | x_t, t, h) distilled from a teacher by shortcut
self-distillation.

Per training sequence: a dyadic step h and a grid time t (:class:`DyadicStepSizes`), x_t on the path;
target = the frozen teacher's p(x1 | x_t, t) for the base case h = 1/N, else a trajectory teacher (Heun or
RK4) over two half steps of the EMA student, whose midpoints are draws of ``self.jump_policy``. Loss:
forward KL(target || p_phi(. | x_t, t, h)) averaged over the positions that can still change, or with
``divergence="reverse"`` the reverse KL(p_phi || target) that SDTT distils with (mode-seeking: the student puts its
mass where the target's is largest rather than covering all of it); for a mixture posterior over latent codes z
(``latent_codes`` > 1), the forward KL to the mixture (:func:`mixture_forward_kl`).
With ``prompt_masking`` > 0 a share of the sequences trains as conditional samples: a random known set K
(:mod:`lightning_tsdfm.prompt_masking`) holds x_t^K = x1^K, every jump of the trajectory that builds the target keeps
it (:class:`ConditionedJump`), and the loss counts only the positions outside K.

The student is the teacher's architecture plus a zero-initialised step-size embedding, initialised from the
teacher's weights, so a fresh student equals its teacher. The frozen teacher is held by reference: never a
parameter, never in the student's checkpoint, never copied by the EMA. The EMA is Lightning's
``EMAWeightAveraging`` (added by :meth:`configure_callbacks`); its averaged copy provides the targets, is
used for validation, and is what the student holds at the end of training.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Literal, Optional, Sequence

import torch

from lightning_tsdfm.checkpoints.frozen import FrozenTeacherMixin
from lightning_tsdfm.checkpoints.teacher import adopt, read_teacher
from lightning_tsdfm.conditioning import ConditionedJump, Given
from lightning_tsdfm.distillation import TRAJECTORIES, DyadicStepSizes, check_trajectory
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.losses import forward_kl, mixture_forward_kl, reverse_kl
from lightning_tsdfm.modules.denoiser import DenoiserModule
from lightning_tsdfm.modules.ema import TargetEMA
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import PolynomialScheduler
from lightning_tsdfm.prompt_masking import PROMPT_KINDS, PromptKind, PromptMasking, positions_to_fill


class StudentModule(FrozenTeacherMixin, DenoiserModule):
    """Few-step student distilled from a teacher checkpoint.

    Args:
        teacher_checkpoint: a teacher checkpoint written by `tsdfm fit` (architecture, source and weights).
        vocab_size: data vocabulary (linked from the DataModule); must equal the teacher's.
        seq_len: sequence length (linked from the DataModule); at most the teacher's.
        trajectory: ``heun`` (one midpoint), ``rk4`` (three midpoints), ``endpoint`` (one midpoint, the law of
            the state it leads to: a shaped midpoint shapes both halves of the target) or ``endpoint_averaged``
            (the endpoint target with its first half averaged over a shaped jump's K candidates: less noise).
        substeps: n, the endpoint targets' sub-steps: x_t takes n - 1 (shaped) jumps of size h / n (at least 1/N)
            and the target is the law of the state the last one leads to, so shaping reaches all but the last h / n
            of it. 2 (one midpoint) for Heun and RK4.
        teacher_steps: N, the teacher's step count: the base case is h = 1/N.
        base_fraction: share of each batch trained on the base case.
        level_weights: weights of the recursive levels h = 1, 1/2, ..., 2/N (default: J - j, larger h more).
        ema_decay: decay of the EMA student that builds the targets.
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
        latent_codes: M; above 1 the student's posterior is a mixture over a per-sequence latent code z in
            {0..M-1} (factorised given z): trained on every code at once by :func:`mixture_forward_kl`, so each code
            takes the targets it explains best (a joint choice across positions, such as a topic, that per-position
            marginals cannot hold); each sampling step draws z ~ Uniform, at the same one forward per step.
        latent_layers: how many of the last blocks see the code besides the output layer (0: the output layer's
            modulation only); the others run once for all M codes, each of these M times per training step.
        latent_init_std: std of the code map's initial weights. 0: a fresh student is its teacher at every code, and
            the codes part only as far as their shared gradient pulls them apart (slowly); 0.05: they start about
            0.02 nats a position apart, so each target already prefers some codes.
        divergence: ``forward`` (KL(target || student), mass-covering) or ``reverse`` (KL(student || target),
            mode-seeking, SDTT's); a mixture over latent codes trains by the forward KL only.
        prompt_masking: share of each batch's sequences (each picked with this probability) trained as conditional
            samples: a random known set (a prefix, or a head and tail around a span to fill) keeps its data tokens
            in x_t, in every state of the trajectory that builds the target and in the student's input; the loss
            averages over the other positions. 0: unconditional distillation, as before.
        prompt_kinds: the known sets drawn, uniformly: ``prefix`` (a prompt continued to the end) and ``infill`` (a
            known head and tail around a span).
        teacher_hparams: filled in from the teacher checkpoint; lets a saved student load without its teacher.
    """

    checkpoint_kind = "student"
    step_size_conditioning = True

    def __init__(
        self,
        teacher_checkpoint: str,
        vocab_size: int,
        seq_len: int,
        trajectory: Literal["heun", "rk4", "endpoint", "endpoint_averaged"] = "heun",
        substeps: int = 2,
        teacher_steps: int = 1024,
        base_fraction: float = 0.25,
        level_weights: Optional[Sequence[float]] = None,
        ema_decay: float = 0.999,
        optimizer: OptimizerConfig = OptimizerConfig(lr=1e-4, warmup_steps=100),
        seed: int = 0,
        latent_codes: int = 1,
        latent_layers: int = 0,
        latent_init_std: float = 0.0,
        divergence: Literal["forward", "reverse"] = "forward",
        prompt_masking: float = 0.0,
        prompt_kinds: Sequence[PromptKind] = PROMPT_KINDS,
        teacher_hparams: Optional[dict] = None,
    ) -> None:
        if divergence not in ("forward", "reverse"):
            raise UserError(f"divergence={divergence!r} is not a divergence the student trains by: use forward "
                            "(KL(target || student)) or reverse (KL(student || target)).")
        if divergence == "reverse" and latent_codes > 1:
            raise UserError(f"divergence='reverse' with latent_codes={latent_codes}: a mixture over latent codes trains "
                            "by the forward KL to the mixture only; set latent_codes to 1, or divergence to forward.")
        teacher = read_teacher(teacher_checkpoint, vocab_size, seq_len, teacher_hparams)
        check_trajectory(trajectory, teacher.hparams["source"], substeps)
        super().__init__(
            vocab_size, teacher.hparams["seq_len"], source=teacher.hparams["source"],
            scheduler=PolynomialScheduler(teacher.hparams["scheduler_exponent"]), backbone=teacher.backbone,
            optimizer=optimizer, t_max=teacher.hparams.get("t_max", 0.999), seed=seed, latent_codes=latent_codes,
            latent_layers=latent_layers, time_conditioning=teacher.hparams.get("time_conditioning", True),
        )
        self.save_hyperparameters()
        adopt(self, teacher, new_parameters=("net.step_embed.", "net.code_embed."))  # a fresh student is its teacher
        if latent_init_std:
            if self.latent_codes == 1:
                raise ValueError(f"latent_init_std={latent_init_std} starts latent codes apart, and this student has "
                                 "none: set latent_codes > 1, or leave latent_init_std at 0.")
            torch.nn.init.normal_(self.net.code_embed.linear.weight, std=latent_init_std)
        self.steps = DyadicStepSizes(teacher_steps, base_fraction, level_weights)
        self.trajectory = TRAJECTORIES[trajectory]
        if substeps != 2:
            self.trajectory = partial(self.trajectory, substeps=substeps, min_step=1.0 / teacher_steps)
        self._ema = TargetEMA(decay=ema_decay)
        self.prompt_masking = PromptMasking.for_length(prompt_masking, prompt_kinds, seq_len)

    # ---- the pieces of the target

    def configure_callbacks(self):
        return [self._ema]

    def ema_posterior(self, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """p_ema(x1 | x, t, h[, z]) as probabilities; a mixture posterior at a code z ~ Uniform drawn per sequence."""
        z = self.draw_codes(x.shape[0], generator, x.device)
        return torch.softmax(self._ema.averaged_module(self)(x, t, h, z=z).float(), dim=-1)

    @torch.no_grad()
    def distillation_target(self, x_t: torch.Tensor, t: torch.Tensor, h: torch.Tensor, is_base: torch.Tensor,
                            generator: torch.Generator, given: Given | None = None) -> torch.Tensor:
        """The target of each sequence of x_t: the teacher's posterior on the base case, else the trajectory's; with
        ``given``, x_t holds its known tokens and every jump of the trajectory keeps them."""
        target = torch.empty(*x_t.shape, self.hparams.vocab_size, device=x_t.device)
        if is_base.any():
            target[is_base] = torch.softmax(self.teacher()(x_t[is_base], t[is_base]).float(), dim=-1)
        rec = ~is_base
        if rec.any():
            posterior = partial(self.ema_posterior, generator=generator)
            jump = self.jump_policy if given is None else ConditionedJump(self.jump_policy, given.select(rec))
            target[rec] = self.trajectory(posterior, jump, self.path, x_t[rec], t[rec], h[rec], generator)
        return target

    def training_step(self, x1: torch.Tensor, batch_idx: int) -> torch.Tensor:
        g = self.step_generator(x1.device)
        t, h, is_base = self.steps.sample(x1.shape[0], g, x1.device)
        x_t = self.path.sample(x1, t, g)
        x_t, given = self.prompt_masking.condition(x1, x_t, g)
        target = self.distillation_target(x_t, t, h, is_base, g, given)
        positions = positions_to_fill(self.path.source.unsettled(x_t), given)
        if self.hparams.divergence == "reverse":
            loss = reverse_kl(self(x_t, t, h), target, positions)
        elif self.latent_codes == 1:
            loss = forward_kl(target, self(x_t, t, h), positions)
        else:  # every code scores every target
            logits = self(x_t, t, h, z=self.every_code(x1.shape[0], x1.device))
            loss, responsibility = mixture_forward_kl(target, logits, positions)
            self.log_code_use(responsibility)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/base_fraction", is_base.float().mean())
        return loss

    def log_code_use(self, responsibility: torch.Tensor) -> None:
        """How the codes share the targets, from their responsibilities r [M, B], as perplexities exp(entropy):
        ``train/codes_in_use`` of the batch's mean r (1: one code takes every target) and ``train/codes_per_target``,
        the mean over targets of r's own (M: the codes do not tell the targets apart yet; 1: each has one code)."""
        def perplexity(r: torch.Tensor) -> torch.Tensor:
            return torch.exp(-(r * r.clamp_min(1e-30).log()).sum(0))

        self.log("train/codes_in_use", perplexity(responsibility.mean(dim=1)))
        self.log("train/codes_per_target", perplexity(responsibility).mean())

    def validation_step_size(self, t: torch.Tensor) -> torch.Tensor:
        """The base case h = 1/N [B]: where the student is trained to be the teacher's p(x1 | x_t, t)."""
        return torch.full_like(t, 1.0 / self.steps.teacher_steps)

    def trained_step_counts(self) -> list[int]:
        """The step counts whose step size h = 1/steps the student was trained on: 1, 2, 4, ..., teacher_steps."""
        return [2**j for j in range(self.steps.num_levels + 1)]

    def sample(self, num_samples: int, steps: int, *args, step_sizes: Sequence[float] | None = None,
               given: Given | None = None, **kwargs) -> torch.Tensor:
        """:meth:`DenoiserModule.sample`, with a warning when a step size is not one the student was trained for."""
        trained = self.trained_step_counts()
        if step_sizes is not None:
            untrained = sorted({h for h in map(float, step_sizes) if not any(abs(h * c - 1) < 1e-9 for c in trained)})
            if untrained:
                warnings.warn(f"this student was trained for step sizes 1, 1/2, ..., 1/{trained[-1]}, not {untrained}: "
                              "its samples may be worse than its training promises.", stacklevel=2)
        elif steps not in trained:
            nearest = [s for s in trained if s < steps][-1:] + [s for s in trained if s > steps][:1]
            warnings.warn(f"this student was trained for power-of-two step counts 1..{trained[-1]} (step sizes "
                          f"1..1/{trained[-1]}), not for {steps} steps (h = 1/{steps}): its samples may be worse than "
                          f"its training promises; use {' or '.join(map(str, nearest))} steps.", stacklevel=2)
        return super().sample(num_samples, steps, *args, step_sizes=step_sizes, given=given, **kwargs)
