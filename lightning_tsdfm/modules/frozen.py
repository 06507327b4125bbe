"""Frozen networks held by reference, outside the holder's parameters and checkpoint."""

from __future__ import annotations

import torch

from lightning_tsdfm.modules.loading import load_module


class FrozenReference:
    """Holds a frozen network by reference: deepcopy returns the holder itself, state_dict never sees it."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval().requires_grad_(False)

    def __deepcopy__(self, memo) -> "FrozenReference":
        return self


class FrozenTeacherMixin:
    """For a LightningModule trained against the teacher checkpoint ``hparams.teacher_checkpoint`` (a student,
    a compass): :meth:`teacher` loads it on first use, frozen and held by reference."""

    _teacher: FrozenReference | None = None

    def teacher(self) -> torch.nn.Module:
        """The frozen teacher on this module's device."""
        if self._teacher is None:
            module = load_module(self.hparams.teacher_checkpoint, expected_kind="teacher", map_location=self.device)
            self._teacher = FrozenReference(module)
        return self._teacher.module.to(self.device)
