"""FinalCheckpoint: Lightning's ModelCheckpoint that also keeps the last optimizer steps of a run.

Lightning saves ``last.ckpt`` at the end of training only when no ``last`` was saved before, so a run that
stops between two ``every_n_train_steps`` saves (``max_steps``, ``max_time``, ``max_epochs``, early stopping)
keeps the state of its previous save and loses the steps after it. This callback saves ``last`` when training
stops, whenever the global step has moved since its last save, and also when training is interrupted (Ctrl-C,
SIGTERM). The final save is taken where the loop still holds the state of the last batch: at the end of the batch
after which training stops (``max_steps``, ``max_time``, the last batch of ``max_epochs``), at the end of the
validation that stops it, or, for a stop decided at the end of a training epoch, with the loop's counters as they
stood after that epoch's last batch. A checkpoint written at the end of training holds an epoch that is already
closed: a run resumed from it trains one batch of the next epoch, then jumps an epoch (on a mid-epoch stop, it
skips the rest of the epoch). Its trainer writes checkpoints atomically
(:class:`~lightning_tsdfm.checkpoint_io.AtomicCheckpointIO`), so a save that fails leaves the previous
``last.ckpt`` whole.
"""

from __future__ import annotations

from contextlib import contextmanager

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override

from lightning_tsdfm.checkpoint_io import install_atomic_checkpoint_io


@contextmanager
def _as_at_last_batch_end(trainer: L.Trainer):
    """The loop's progress counters as they stood at the end of the epoch's last batch, for the block only."""
    fit_loop = trainer.fit_loop
    epoch_loop = fit_loop.epoch_loop
    counters = [fit_loop.epoch_progress.total, fit_loop.epoch_progress.current]
    batches = [epoch_loop.batch_progress.total, epoch_loop.batch_progress.current]
    for c in counters:
        c.processed -= 1
    for b in batches:
        b.completed -= 1
    epoch_loop._batches_that_stepped -= 1
    try:
        yield
    finally:
        for c in counters:
            c.processed += 1
        for b in batches:
            b.completed += 1
        epoch_loop._batches_that_stepped += 1


class FinalCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` (same arguments) whose ``last.ckpt`` holds the final
    step, also of a run stopped by Ctrl-C or SIGTERM, and resumes it exactly."""

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        install_atomic_checkpoint_io(trainer)
        super().setup(trainer, pl_module, stage)

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args, **kwargs) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        # a save deferred to the validation after this batch (a monitored metric) saves `last` there
        if (self._stops_after_batch(trainer) and not getattr(self, "_defer_save_until_validation", False)
                and not self._should_skip_saving_checkpoint(trainer)):
            self._save_final(trainer)

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and (
                self._stops_after_batch(trainer) or self._stopped(trainer)):
            self._save_final(trainer)

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and self._stopped(trainer):
            with _as_at_last_batch_end(trainer):
                self._save_final(trainer)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_final(trainer)  # a stop none of the hooks above saw: the steps are kept, resumed or not exactly
        super().on_train_end(trainer, pl_module)

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and trainer.state.fn == TrainerFn.FITTING:
            if self._save_final(trainer):
                rank_zero_info(f"FinalCheckpoint: interrupted at step {trainer.global_step}; saved "
                               f"{self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)} (resume with --ckpt_path)")
        super().on_exception(trainer, pl_module, exception)

    @staticmethod
    def _stopped(trainer: L.Trainer) -> bool:
        """Training was told to stop (``max_time``, early stopping) and may stop now."""
        return trainer.should_stop and trainer.fit_loop._can_stop_early

    @classmethod
    def _stops_after_batch(cls, trainer: L.Trainer) -> bool:
        """Training ends after the current batch: ``max_steps`` reached, told to stop, or the last batch of the last
        epoch (``max_epochs``)."""
        epoch_loop = trainer.fit_loop.epoch_loop
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None else -1
        return (0 < trainer.max_steps <= trainer.global_step or cls._stopped(trainer) or (
            0 <= max_epochs <= trainer.current_epoch + 1 and epoch_loop._num_ready_batches_reached()))

    def _save_final(self, trainer: L.Trainer) -> bool:
        """Save ``last`` when the global step moved since the last save; True if it saved."""
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            return True
        return False
