"""What a student, a compass or a plugin's distillation module takes from its teacher checkpoint (hyper-parameters,
weights, data card), and the check of the teacher against the data it is trained on."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import torch

from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules.loading import read_checkpoint


@dataclass
class TeacherCheckpoint:
    """The teacher's hyper-parameters, and its weights and data card when read from its checkpoint (None when a
    saved module reloads from the hyper-parameters it recorded)."""

    hparams: dict
    state_dict: dict | None = None
    data_card: dict | None = None

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 of the teacher's weights (:func:`state_dict_fingerprint`), None without them."""
        return None if self.state_dict is None else state_dict_fingerprint(self.state_dict)

    @property
    def backbone(self) -> TransformerConfig:
        backbone = self.hparams["backbone"]
        return TransformerConfig(**backbone) if isinstance(backbone, dict) else backbone


def read_teacher(path: str, vocab_size: int, seq_len: int, saved_hparams: dict | None = None,
                 kinds: str | tuple[str, ...] = "teacher") -> TeacherCheckpoint:
    """The teacher at ``path`` (a checkpoint of one of ``kinds``), or only its ``saved_hparams`` when given,
    after checking it fits data of ``vocab_size`` tokens in blocks of ``seq_len``."""
    if saved_hparams is None:
        checkpoint = read_checkpoint(path, expected_kind=kinds)
        teacher = TeacherCheckpoint(dict(checkpoint["hyper_parameters"]), checkpoint["state_dict"],
                                    checkpoint["tsdfm"].get("data_card"))
    else:
        teacher = TeacherCheckpoint(saved_hparams)
    check_teacher_fits_data(teacher.hparams, vocab_size, seq_len, path)
    return teacher


def state_dict_fingerprint(state_dict: dict) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes: equal for equal weights, whatever file holds them."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        tensor = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


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
