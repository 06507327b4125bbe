"""FinalCheckpoint: Lightning's ModelCheckpoint that also keeps the last optimizer steps of a run.

Lightning saves ``last.ckpt`` at the end of training only when no ``last`` was saved before, so a run that
stops between two ``every_n_train_steps`` saves (``max_steps``, ``max_time``) keeps the state of its previous
save and loses the steps after it. This callback saves ``last`` at the end of training whenever the global step
has moved since its last save.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from typing_extensions import override


class FinalCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` (same arguments) whose ``last.ckpt`` holds the final step."""

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
