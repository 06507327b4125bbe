"""An FS-DFM checkpoint (apple/ml-fs-dfm) as a :class:`TeacherModule`: FS-DFM's teacher is a discrete flow
matching denoiser on the same mixture path (kappa(t) = t^n, t = 0 the source, t = 1 the data)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from lightning_tsdfm.models.fsdfm_layout import fsdfm_backbone_config, from_fsdfm_state_dict
from lightning_tsdfm.modules.teacher import TeacherModule

#: FS-DFM's data vocabulary: GPT-2's tokenizer
GPT2_VOCAB_SIZE = 50257
#: where each FS-DFM checkpoint keeps the teacher: FS-DFM's distillation runs, then DFM pre-training
TEACHER_KEYS = ("teacher_model", "model")


def fsdfm_teacher_state(checkpoint: str | Path | dict) -> dict[str, Tensor]:
    """The teacher's state dict from an FS-DFM checkpoint: a ``.pth`` path or its loaded dict (a distillation
    run's ``teacher_model``, the DFM initialisation's ``model``, or a bare state dict)."""
    if isinstance(checkpoint, (str, Path)):
        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key in TEACHER_KEYS:
        if key in checkpoint:
            return checkpoint[key]
    if all(isinstance(v, Tensor) for v in checkpoint.values()):
        return checkpoint
    raise KeyError(
        f"No teacher in this FS-DFM checkpoint: it has {sorted(checkpoint)[:8]}, none of {list(TEACHER_KEYS)} "
        "and is not a state dict. 'student_model' / 'student_ema_model' are step-conditioned students, which "
        "this backbone cannot hold (see lightning_tsdfm.models.fsdfm_layout)."
    )


def load_fsdfm_teacher(
    checkpoint: str | Path | dict,
    num_heads: int,
    source: Literal["mask", "uniform"],
    seq_len: int = 1024,
    scheduler_exponent: float = 1.0,
    vocab_size: int = GPT2_VOCAB_SIZE,
    **teacher_kwargs,
) -> TeacherModule:
    """A :class:`TeacherModule` computing an FS-DFM teacher's function.

    FS-DFM gives its embedding and its output layer ``vocab_size + 1`` rows with a mask source (the mask id is the
    last; the output scores it too) and ``vocab_size`` with a uniform one, so the shapes tell the source only
    against the data vocabulary: ``source`` and ``vocab_size`` must give the checkpoint's row count, or the load is
    refused (loaded as the wrong source, the last data token would be taken for the mask, or the mask for a token).

    Args:
        checkpoint: FS-DFM ``.pth`` file or its loaded dict (see :func:`fsdfm_teacher_state`).
        num_heads: the checkpoint's ``model.n_heads`` (12 for 768 wide, 32 for the 1.3B models).
        source: its ``flow.source_distribution`` (the published 1.3B checkpoints: ``uniform``).
        seq_len: its ``model.length``.
        scheduler_exponent: its ``flow.exponent`` (kappa(t) = t^n).
        vocab_size: the data vocabulary: GPT-2's 50257 tokens (FS-DFM's tokenizer) unless the run used another.
        teacher_kwargs: further :class:`TeacherModule` arguments (lr, loss, ...).
    """
    if source not in ("mask", "uniform"):
        raise ValueError(f"source must be 'mask' or 'uniform' (FS-DFM's flow.source_distribution), got {source!r}.")
    state = fsdfm_teacher_state(checkpoint)
    masked = source == "mask"
    mapped = from_fsdfm_state_dict(state, num_heads, masked=masked)
    rows, outputs = mapped["embed.weight"].shape[0], mapped["head.weight"].shape[0] + masked
    if outputs != rows:
        raise ValueError(
            f"FS-DFM's embedding has {rows} rows but its output layer {outputs}: FS-DFM's teacher gives both the same "
            f"count (the vocabulary, plus the mask with a mask source). This is not an FS-DFM teacher's state dict."
        )
    if rows != vocab_size + masked:
        other = "uniform" if masked else "mask"
        raise ValueError(
            f"FS-DFM's embedding has {rows} rows; a {source!r} source over {vocab_size} tokens needs "
            f"{vocab_size + masked} (a mask source adds the mask id): pass the checkpoint's flow.source_distribution "
            f"as source" + (f" (its {rows} rows are a {other!r} source over {vocab_size} tokens)"
                            if rows == vocab_size + (not masked) else "") +
            f", and its data vocabulary as vocab_size if it is not GPT-2's {GPT2_VOCAB_SIZE}."
        )
    module = TeacherModule(mapped["head.weight"].shape[0], seq_len, source, scheduler_exponent,
                           backbone=fsdfm_backbone_config(state, num_heads), **teacher_kwargs)
    module.net.load_state_dict(mapped, strict=True)
    return module
