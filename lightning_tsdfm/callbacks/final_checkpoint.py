"""FinalCheckpoint: Lightning's ModelCheckpoint that also keeps the last optimizer steps of a run.

Lightning saves ``last.ckpt`` at the end of training only when no ``last`` was saved before, so a run that
stops between two ``every_n_train_steps`` saves (``max_steps``, ``max_time``) keeps the state of its previous
save and loses the steps after it. This callback saves ``last`` at the end of training whenever the global step
has moved since its last save, and also when training is interrupted (Ctrl-C, SIGTERM). The batch that reaches
``max_steps`` is saved at its end, before Lightning closes the epoch: a checkpoint written later, at the end of
training, holds loop state that resumes a run ending on an epoch boundary one epoch off. Its trainer writes
checkpoints atomically (:class:`~lightning_tsdfm.checkpoint_io.AtomicCheckpointIO`), so a save that fails leaves
the previous ``last.ckpt`` whole.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override

from lightning_tsdfm.checkpoint_io import install_atomic_checkpoint_io


class FinalCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` (same arguments) whose ``last.ckpt`` holds the final
    step, also of a run stopped by Ctrl-C or SIGTERM."""

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        install_atomic_checkpoint_io(trainer)
        super().setup(trainer, pl_module, stage)

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args, **kwargs) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        if 0 < trainer.max_steps <= trainer.global_step and not self._should_skip_saving_checkpoint(trainer):
            self._save_final(trainer)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_final(trainer)
        super().on_train_end(trainer, pl_module)

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and trainer.state.fn == TrainerFn.FITTING:
            if self._save_final(trainer):
                rank_zero_info(f"FinalCheckpoint: interrupted at step {trainer.global_step}; saved "
                               f"{self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)} (resume with --ckpt_path)")
        super().on_exception(trainer, pl_module, exception)

    def _save_final(self, trainer: L.Trainer) -> bool:
        """Save ``last`` when the global step moved since the last save; True if it saved."""
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            return True
        return False
