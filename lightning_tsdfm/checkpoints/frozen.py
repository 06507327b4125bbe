"""Frozen networks held by reference, outside the holder's parameters and checkpoint, and the frozen teacher of a
module trained against a teacher checkpoint."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from lightning_tsdfm.checkpoints.loading import load_module
from lightning_tsdfm.errors import UserError


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


class FrozenReference:
    """Holds a frozen network by reference: deepcopy returns the holder itself, state_dict never sees it."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval().requires_grad_(False)

    def __deepcopy__(self, memo) -> "FrozenReference":
        return self


class FrozenTeacherMixin:
    """For a LightningModule trained against the teacher checkpoint ``hparams.teacher_checkpoint`` (a student,
    a compass): :meth:`teacher` is the teacher frozen and held by reference, the one read when the module was built
    (:func:`~lightning_tsdfm.checkpoints.teacher.adopt`), else loaded on first use (a module loaded from its
    own checkpoint), of the checkpoint kind :meth:`teacher_kind`.

    ``teacher_fingerprint`` (a hash of the teacher weights this module was built or trained with) is saved in every
    checkpoint; a run resumed after the teacher file changed (other weights under the same path) is refused, when
    the module is built and when the frozen teacher is loaded.
    """

    _teacher: FrozenReference | None = None
    teacher_fingerprint: str | None = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["tsdfm"]["teacher_fingerprint"] = self.teacher_fingerprint

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        trained_with = checkpoint["tsdfm"].get("teacher_fingerprint")
        if trained_with is not None:
            fingerprint, self.teacher_fingerprint = self.teacher_fingerprint, trained_with
            if fingerprint is not None:  # read from the teacher file when this module was built
                self._check_teacher(fingerprint)

    def teacher_kind(self) -> str:
        """The checkpoint kind of the teacher: the library's ``teacher``."""
        return "teacher"

    def teacher(self) -> torch.nn.Module:
        """The frozen teacher on this module's device (refused when its weights are not the ones this module was
        trained with)."""
        if self._teacher is None:
            self.hold_teacher(load_module(self.hparams.teacher_checkpoint, expected_kind=self.teacher_kind(),
                                          map_location=self.device))
        return self._teacher.module.to(self.device)

    def hold_teacher(self, module: torch.nn.Module, fingerprint: str | None = None) -> None:
        """Keep ``module`` as the frozen teacher, after checking its weights (their ``fingerprint``, computed when not
        given) are the ones this module was trained with."""
        self._check_teacher(fingerprint or state_dict_fingerprint(module.state_dict()))
        self._teacher = FrozenReference(module)

    def on_fit_start(self) -> None:
        self.teacher()  # a changed teacher file is refused before the first step
        super().on_fit_start()

    def _check_teacher(self, fingerprint: str) -> None:
        if self.teacher_fingerprint is not None and fingerprint != self.teacher_fingerprint:
            raise UserError(
                f"The teacher {self.hparams.teacher_checkpoint} is not the one this {type(self).__name__} was trained "
                f"with (its weights changed since). Resume with the original teacher file, or start a new run "
                f"without --ckpt_path."
            )
        self.teacher_fingerprint = fingerprint
