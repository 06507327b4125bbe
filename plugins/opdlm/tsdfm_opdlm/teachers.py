"""OPDLM's causal teacher and the student built from it.

The teacher is the project's causal LM (a ``CausalLMModule`` checkpoint written by ``tsdfm fit``) or a Hugging Face
causal LM (``smollm2``, ``hf:<dir>``: :mod:`tsdfm_opdlm.hf_causal_lm`). Anything else given as the teacher, a
diffusion teacher's checkpoint for one, is refused with the reason: OPDLM's targets are next-token predictions.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules import CausalLMModule, read_checkpoint_header
from lightning_tsdfm.modules.teacher_checkpoint import TeacherCheckpoint, read_teacher
from tsdfm_opdlm.hf_causal_lm import hf_student, is_hugging_face, read_hf_teacher
from tsdfm_opdlm.student import block_diffusion_transformer, student_from_causal

CAUSAL_KIND = CausalLMModule.checkpoint_kind


def read_causal_teacher(spec: str, vocab_size: int, seq_len: int, saved_hparams: dict | None = None) -> TeacherCheckpoint:
    """The teacher named by ``spec`` (loaded once), or only its ``saved_hparams`` when a saved student reloads."""
    if is_hugging_face(spec):
        return read_hf_teacher(spec, vocab_size, seq_len, saved_hparams)
    if saved_hparams is None and Path(spec).is_file():
        kind = read_checkpoint_header(spec).get("kind")
        if kind != CAUSAL_KIND:
            raise UserError(
                f"OPDLM distils a causal LM, but {spec} is a {kind!r} checkpoint. Give a {CAUSAL_KIND!r} checkpoint "
                f"(`tsdfm fit --model CausalLMModule`, e.g. configs/ar_judge_text_tiny.yaml) or a Hugging Face causal "
                f"LM (smollm2, hf:<dir>) as teacher_checkpoint.")
    return read_teacher(spec, vocab_size, seq_len, saved_hparams, kinds=CAUSAL_KIND)


def build_student(description: dict, init: str, teacher: nn.Module | None) -> nn.Module:
    """The student network for the teacher ``description`` (its saved hyper-parameters): converted from the loaded
    ``teacher`` when ``init`` is ``teacher`` and it is at hand, else the same architecture freshly initialised."""
    convert = teacher if init == "teacher" else None
    if description.get("kind") == "hf":
        return hf_student(description, convert)
    if convert is not None:
        return student_from_causal(convert.net)
    backbone = description["backbone"]
    config = TransformerConfig(**backbone) if isinstance(backbone, dict) else backbone
    return block_diffusion_transformer(config, description["vocab_size"], description["seq_len"] + 1)
