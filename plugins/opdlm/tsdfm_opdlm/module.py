"""OPDLMModule: a causal LM turned into a block-diffusion LM, trained on-policy or by one of the comparison arms.

The student (:mod:`tsdfm_opdlm.student`) decodes completions of L tokens after a one-token prompt in blocks of B,
S confidence-decoding steps a block (:mod:`tsdfm_opdlm.decoding`). A training step, per batch of B_s sequences:

1. completions x0: the student's own rollouts (``completions: rollout``, on-policy) or data blocks (``data``);
2. one noisy state per block, stitched into x_t: a state of the block's own decoding trajectory
   (``states: trajectory``) or a random mask (``random``) (:mod:`tsdfm_opdlm.states`);
3. the student reads [prompt | x0 | x_t] (block b of x_t sees the clean blocks before it) and is trained at the
   masked tokens of x_t towards the frozen causal teacher, forward KL(p_AR(. | prompt, x0_<k) || p_S) with an
   optional top-k sum (``targets: teacher``), or towards the data token (``targets: data``, cross-entropy).

Arms with one backbone and one sampler: OPDLM (teacher init, rollout, trajectory, teacher); block diffusion from
scratch (scratch, data, random, data); the converted model on data (teacher, data, random, data); the converted
model distilled off-policy (teacher, data, random, teacher). Every rollout draw goes through ``self.jump_policy``,
so ``TrajectoryShaper`` shapes the rollouts (K = 1 is the blind rollout bit for bit). The teacher is held by
reference (never a parameter, never in the checkpoint); its hyper-parameters are, so a saved student samples
without the teacher file. Training tokens: B_s * L a step (the completions distilled), logged as ``train/tokens``.
"""

from __future__ import annotations

from typing import Literal, Optional

import lightning as L
import torch
from torch import Tensor

from lightning_tsdfm.conditioning import ConditionedJump, Given, check_given
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump, JumpPolicy
from lightning_tsdfm.metrics.entropy import unigram_entropy
from lightning_tsdfm.modules.data_card import DataCardMixin
from lightning_tsdfm.modules.frozen import FrozenTeacherMixin
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.teacher_checkpoint import adopt
from lightning_tsdfm.modules.training import TrainingMixin
from lightning_tsdfm.paths import MaskSource, MixturePath, PolynomialScheduler
from tsdfm_opdlm.decoding import ConfidenceRule, Rollout, causal_decode, confidence_decode
from tsdfm_opdlm.distillation import cross_entropy, teacher_targets, top_k_forward_kl
from tsdfm_opdlm.hf_causal_lm import is_hugging_face, read_hf_teacher
from tsdfm_opdlm.states import random_states, trajectory_states
from tsdfm_opdlm.student import block_logits, doubled_logits
from tsdfm_opdlm.teachers import CAUSAL_KIND, build_student, read_causal_teacher


class OPDLMModule(FrozenTeacherMixin, TrainingMixin, DataCardMixin, L.LightningModule):
    """Block-diffusion student of a causal LM (see the module docstring).

    Args:
        teacher_checkpoint: the causal LM: a ``causal_lm`` checkpoint of `tsdfm fit`, ``smollm2`` or ``hf:<dir>``.
        vocab_size: data vocabulary (linked from the DataModule); the mask id is vocab_size.
        seq_len: completion length L (linked from the DataModule); a multiple of block_size.
        init: ``teacher`` (the converted causal LM) or ``scratch`` (its architecture, freshly initialised).
        completions: ``rollout`` (the student's own, on-policy) or ``data``.
        states: ``trajectory`` (a state of each block's decoding, needs rollouts) or ``random`` (a random mask rate).
        targets: ``teacher`` (forward KL to the causal LM) or ``data`` (cross-entropy on the completion's tokens).
        block_size: B, tokens a block.
        steps_per_block: S, decoding steps a block (at least ceil(B / S) tokens unmasked a step).
        threshold: every masked token whose drawn token has probability above it is unmasked at once.
        rollout_temperature: sampling temperature of the training rollouts' draws.
        top_k: sum the forward KL over the teacher's top k ids only (None: the full vocabulary).
        prompt_token: the one-token prompt (None: the tokenizer's EOS, 0 for data without one).
        optimizer: AdamW's peak learning rate, weight decay and warm-up (:class:`OptimizerConfig`).
        seed: seed of the training draws, combined with (global_step, rank, micro-batch).
        teacher_hparams: filled in from the teacher; lets a saved student load without its teacher.
    """

    checkpoint_kind = "opdlm"
    samplers = ("confidence", "teacher")

    def __init__(
        self,
        teacher_checkpoint: str,
        vocab_size: int,
        seq_len: int,
        init: Literal["teacher", "scratch"] = "teacher",
        completions: Literal["rollout", "data"] = "rollout",
        states: Literal["trajectory", "random"] = "trajectory",
        targets: Literal["teacher", "data"] = "teacher",
        block_size: int = 4,
        steps_per_block: int = 4,
        threshold: float = 0.9,
        rollout_temperature: float = 1.0,
        top_k: Optional[int] = None,
        prompt_token: Optional[int] = None,
        optimizer: OptimizerConfig = OptimizerConfig(lr=1e-4, warmup_steps=20),
        seed: int = 0,
        teacher_hparams: Optional[dict] = None,
    ) -> None:
        super().__init__()
        _check_arm(init, completions, states, targets, top_k)
        if seq_len % block_size:
            raise UserError(f"seq_len={seq_len} is not a multiple of block_size={block_size}.")
        self.rule = ConfidenceRule(block_size, steps_per_block, threshold)
        teacher = read_causal_teacher(teacher_checkpoint, vocab_size, seq_len, teacher_hparams)
        self.optimizer_config = OptimizerConfig.of(optimizer)
        self.seed = seed
        self.save_hyperparameters()
        adopt(self, teacher, weights=False)
        self.net = build_student(self.hparams.teacher_hparams, init, teacher.module)
        self.path = MixturePath(MaskSource(vocab_size), PolynomialScheduler())
        self.jump_policy: JumpPolicy = BlindJump(temperature=rollout_temperature)

    # ---- the teacher

    def teacher_kind(self) -> str:
        return CAUSAL_KIND

    def teacher(self) -> torch.nn.Module:
        """The frozen causal teacher on this module's device, next-token logits ``teacher(tokens)`` [B, n, V]."""
        if self._teacher is None and is_hugging_face(self.hparams.teacher_checkpoint):
            loaded = read_hf_teacher(self.hparams.teacher_checkpoint, self.hparams.vocab_size, self.hparams.seq_len)
            self.hold_teacher(loaded.module, loaded.fingerprint)
        return super().teacher()

    def on_fit_start(self) -> None:
        if self.hparams.targets == "teacher":
            super().on_fit_start()  # the teacher is checked before the first step

    # ---- decoding

    @property
    def mask_id(self) -> int:
        return self.hparams.vocab_size

    def prompt(self, batch: int) -> Tensor:
        """The one-token prompt [batch, 1]: ``prompt_token``, else the tokenizer's EOS, else 0."""
        token = self.hparams.prompt_token
        if token is None:
            token = (self.data_card or {}).get("eos_id") or 0
        return torch.full((batch, 1), int(token), dtype=torch.long, device=self.device)

    def rollout(self, batch: int, rule: ConfidenceRule, jump: JumpPolicy, generator: torch.Generator | None,
                start: Tensor | None = None) -> Rollout:
        """``batch`` completions confidence-decoded by the student (no gradient, eval mode), from ``start`` (default:
        all masked)."""
        prompt = self.prompt(batch)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return confidence_decode(lambda x, b: block_logits(self.net, prompt, x, b, rule.block_size), batch,
                                         self.hparams.seq_len, rule, jump, self.mask_id, generator, self.device, start)
        finally:
            self.train(was_training)

    # ---- training

    def training_step(self, x1: Tensor, batch_idx: int) -> Tensor:
        hp = self.hparams
        g = self.step_generator(x1.device)
        batch = x1.shape[0]
        prompt = self.prompt(batch)
        if hp.completions == "rollout":
            rollout = self.rollout(batch, self.rule, self.jump_policy, g)
            x0 = rollout.tokens
            self.log("train/rollout_entropy", unigram_entropy(x0).float().mean())
        else:
            x0 = x1
        if hp.states == "trajectory":
            x_t = trajectory_states(x0, rollout.step_index, hp.block_size, hp.steps_per_block, self.mask_id, g)
        else:
            x_t = random_states(x0, hp.block_size, self.mask_id, g)
        logits = doubled_logits(self.net, prompt, x0, x_t, hp.block_size)
        positions = x_t == self.mask_id
        if hp.targets == "teacher":
            with torch.no_grad():
                target = teacher_targets(self.teacher(), prompt, x0)
            loss = top_k_forward_kl(target, logits, positions, hp.top_k)
        else:
            loss = cross_entropy(logits, x0, positions)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/tokens", float((self.global_step + 1) * batch * hp.seq_len * self.trainer.world_size))
        return loss

    def validation_step(self, x1: Tensor, batch_idx: int) -> None:
        """Cross-entropy of the data's tokens under random block masks (block diffusion's own loss)."""
        g = self.validation_generator(batch_idx, x1.device)
        x_t = random_states(x1, self.hparams.block_size, self.mask_id, g)
        logits = doubled_logits(self.net, self.prompt(x1.shape[0]), x1, x_t, self.hparams.block_size)
        self.log("val/ce", cross_entropy(logits, x1, x_t == self.mask_id), prog_bar=True)

    # ---- sampling (tsdfm sample, benchmarks)

    @torch.no_grad()
    def sample(self, num_samples: int, steps: int, generator: torch.Generator | None = None,
               batch_size: int | None = None, progress: bool = False, jump: JumpPolicy | None = None,
               sampler: str | None = None, given: Given | None = None) -> Tensor:
        """Completions [num_samples, seq_len]. ``confidence``: the student, ``steps`` in all (steps / number of blocks
        a block, the training threshold); ``teacher``: the causal teacher's ancestral samples (``steps`` = seq_len).
        With ``given`` ([num_samples, seq_len] known tokens) a completion starts with its known tokens in place and
        never changes them; block b is decoded seeing the known tokens of blocks 1..b (block-causal: a known token of
        a later block is kept but not seen, and the causal teacher sees only those before the token it draws)."""
        sampler = sampler or self.samplers[0]
        if sampler not in self.samplers:
            raise ValueError(f"{type(self).__name__} has no sampler {sampler!r}: choose one of {list(self.samplers)}.")
        blocks = self.hparams.seq_len // self.hparams.block_size
        if sampler == "teacher" and steps != self.hparams.seq_len:
            raise UserError(f"The teacher sampler draws one token a step: steps must be seq_len={self.hparams.seq_len}.")
        if sampler == "confidence" and (steps % blocks or not 1 <= steps // blocks <= self.hparams.block_size):
            raise UserError(f"steps={steps} must be a multiple of the {blocks} blocks, at most {blocks} x block_size "
                            f"({blocks * self.hparams.block_size}): S = steps / blocks decoding steps a block.")
        check_given(given, num_samples, self.hparams.seq_len, type(self).__name__)
        jump = jump or BlindJump()
        batch_size = batch_size or num_samples
        out = []
        for first in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - first)
            start, chunk_jump = None, jump
            if given is not None:
                rows = given.rows(first, n).to(self.device)
                start = rows.impose(torch.full((n, self.hparams.seq_len), self.mask_id, device=self.device))
                chunk_jump = ConditionedJump(jump, rows)
            if sampler == "teacher":
                teacher = self.teacher()
                out.append(causal_decode(teacher, self.prompt(n), self.hparams.seq_len, chunk_jump, self.mask_id,
                                         generator, start))
            else:
                rule = ConfidenceRule(self.hparams.block_size, steps // blocks, self.hparams.threshold)
                out.append(self.rollout(n, rule, chunk_jump, generator, start).tokens)
        return torch.cat(out)


def _check_arm(init: str, completions: str, states: str, targets: str, top_k: int | None) -> None:
    choices = {"init": (init, ("teacher", "scratch")), "completions": (completions, ("rollout", "data")),
               "states": (states, ("trajectory", "random")), "targets": (targets, ("teacher", "data"))}
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"{name}={value!r}: choose one of {', '.join(allowed)}.")
    if states == "trajectory" and completions != "rollout":
        raise UserError("states=trajectory takes the states of the student's own decoding: it needs completions=rollout "
                        "(use states=random with completions=data).")
    if targets == "data" and completions == "rollout":
        raise UserError("targets=data trains on the completion's own tokens, which for rollouts are the student's: "
                        "use completions=data, or targets=teacher for on-policy distillation.")
    if top_k is not None and (top_k < 1 or targets != "teacher"):
        raise UserError(f"top_k={top_k}: a positive number of teacher ids, with targets=teacher only.")
