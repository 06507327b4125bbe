"""The hyper-parameters a student or a compass copies from its teacher checkpoint, and their check against
the data it is trained on."""

from __future__ import annotations

from dataclasses import asdict

from lightning_tsdfm.models import TransformerConfig


def plain_hparams(hparams) -> dict:
    """The teacher's hyper-parameters as plain Python (its backbone config as a dict), safe to save."""
    out = dict(hparams)
    if isinstance(out.get("backbone"), TransformerConfig):
        out["backbone"] = asdict(out["backbone"])
    return out


def check_teacher_fits_data(teacher_hparams: dict, vocab_size: int, seq_len: int, where: str) -> None:
    """The data must have the teacher's vocabulary and blocks no longer than the teacher's."""
    if teacher_hparams["vocab_size"] != vocab_size:
        raise ValueError(f"The teacher {where} has vocab_size={teacher_hparams['vocab_size']} but the data has "
                         f"{vocab_size} tokens: use the data and tokenizer the teacher was trained on.")
    if seq_len > teacher_hparams["seq_len"]:
        raise ValueError(f"The data has blocks of {seq_len} tokens but the teacher {where} was built for "
                         f"seq_len={teacher_hparams['seq_len']}: set data.seq_len <= {teacher_hparams['seq_len']}.")
