"""RoundTeacherMixin: progressive distillation's teacher, the student itself frozen at the start of each round.

Round r = ``current_round()`` (the module's own schedule) is taught by a frozen copy of the student's network taken
when r began (SDTT's rounds, DUO's consistency distillation). The copy travels in the student's checkpoint under
``round_teacher_key``, so a resumed run keeps the round's teacher instead of taking a new one mid-round.
"""

from __future__ import annotations

from typing import Any

import torch

from lightning_tsdfm.checkpoints.frozen import FrozenReference
from lightning_tsdfm.modules.fully_sharded import unsharded_copy


class RoundTeacherMixin:
    """Put before the LightningModule base; the module defines ``current_round()`` and ``round_teacher_key``."""

    round_teacher_key: str

    def init_round_teacher(self) -> None:
        """No teacher yet: the first training batch (or :meth:`round_teacher`) takes one."""
        self._round_teacher: FrozenReference | None = None
        self._teacher_round = -1

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        round_ = self.current_round()
        if round_ != self._teacher_round:  # the student at the start of the round becomes its teacher
            self._round_teacher = FrozenReference(unsharded_copy(self.net))
            self._teacher_round = round_

    def round_teacher(self) -> torch.nn.Module:
        """The teacher of the current round (the student itself before any training step)."""
        if self._round_teacher is None:
            self._round_teacher, self._teacher_round = FrozenReference(unsharded_copy(self.net)), self.current_round()
        return self._round_teacher.module

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self._round_teacher is not None:
            checkpoint[self.round_teacher_key] = {"round": self._teacher_round,
                                                  "teacher": self._round_teacher.module.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get(self.round_teacher_key)
        if saved is not None:
            teacher = unsharded_copy(self.net)
            teacher.load_state_dict(saved["teacher"])
            self._round_teacher, self._teacher_round = FrozenReference(teacher), saved["round"]
