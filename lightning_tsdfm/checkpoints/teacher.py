"""The teacher checkpoint a student, a compass or a plugin's distillation module is built from: read once
(:func:`read_teacher`), checked against the data it trains on, and adopted (:func:`adopt`): its
hyper-parameters, weights, data card and, for a module that keeps its teacher frozen, the loaded teacher itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass

import torch

from lightning_tsdfm.checkpoints.fits import check_fits
from lightning_tsdfm.checkpoints.frozen import FrozenTeacherMixin, state_dict_fingerprint
from lightning_tsdfm.checkpoints.loading import load_module
from lightning_tsdfm.models.backbone import TransformerConfig


@dataclass
class TeacherCheckpoint:
    """The teacher's hyper-parameters, and, when read from its file at ``path``, its weights, data card and the
    loaded module (None when a saved module reloads from the hyper-parameters it recorded)."""

    path: str
    hparams: dict
    state_dict: dict | None = None
    data_card: dict | None = None
    module: torch.nn.Module | None = None

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
    """The teacher at ``path`` (a checkpoint of one of ``kinds``, loaded once), or only its ``saved_hparams`` when
    given, after checking it fits data of ``vocab_size`` tokens in blocks of ``seq_len``."""
    if saved_hparams is None:
        module = load_module(path, expected_kind=kinds)
        teacher = TeacherCheckpoint(str(path), dict(module.hparams), module.state_dict(),
                                    getattr(module, "data_card", None), module)
    else:
        teacher = TeacherCheckpoint(str(path), saved_hparams)
    check_teacher_fits(teacher.hparams, vocab_size, seq_len, path)
    return teacher


def check_teacher_fits(hparams: dict, vocab_size: int, seq_len: int, path) -> None:
    """The data (``vocab_size`` tokens in blocks of ``seq_len``) must fit the teacher of ``hparams``."""
    check_fits(f"the teacher {path}", hparams["vocab_size"], hparams["seq_len"], "the data", vocab_size, seq_len)


def adopt(module: torch.nn.Module, teacher: TeacherCheckpoint, *, weights: bool = True,
          new_parameters: tuple[str, ...] = ()) -> None:
    """What ``module`` takes from its teacher: the teacher's hyper-parameters as ``hparams.teacher_hparams`` (so a
    saved module loads without the teacher file); when the teacher was read from its file, its weights
    (``weights``: every parameter of ``module`` but those whose names start with one of ``new_parameters``) and its
    data card (``setup()`` then refuses other data); and for a :class:`FrozenTeacherMixin`, the fingerprint of the
    teacher's weights (a resumed run refuses a changed teacher file) and the loaded teacher, held frozen."""
    module.hparams.teacher_hparams = plain_hparams(teacher.hparams)
    if teacher.state_dict is None:
        return
    if weights:
        missing, unexpected = module.load_state_dict(teacher.state_dict, strict=False)
        foreign = [name for name in missing if not (new_parameters and name.startswith(new_parameters))]
        if unexpected or foreign:
            raise ValueError(f"{teacher.path} does not match the {type(module).__name__}'s architecture "
                             f"(missing {foreign[:3]}, unexpected {unexpected[:3]}).")
    if teacher.data_card is not None:
        module.data_card = teacher.data_card
    if isinstance(module, FrozenTeacherMixin):
        module.teacher_fingerprint = teacher.fingerprint
        if teacher.module is not None:
            module.hold_teacher(teacher.module, module.teacher_fingerprint)


def plain_hparams(hparams) -> dict:
    """The teacher's hyper-parameters as plain Python (its backbone and optimizer configs as dicts), safe to save."""
    return {name: asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
            for name, value in dict(hparams).items()}
