"""What the training of every module shares: its optimizer, and random draws that depend only on (seed, step, rank,
micro-batch)."""

from __future__ import annotations

import torch

from lightning_tsdfm.modules.fully_sharded import FullyShardedMixin
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.seeding import derived_generator, training_generator


class TrainingMixin(FullyShardedMixin):
    """For a LightningModule that holds ``optimizer_config`` (an :class:`OptimizerConfig`) and ``seed``:
    ``configure_optimizers``, and the generators of its draws. Training step s on rank r draws from the generator of
    (seed + offset, s, r, m), m the batch's place in the step's gradient-accumulation window (0 without accumulation:
    :func:`~lightning_tsdfm.seeding.training_generator`); validation batch b from (seed + 1 + offset, b, r), the same
    in every validation run.
    ``configure_model`` shards its transformer blocks under ``--trainer.strategy=fsdp2`` (:class:`FullyShardedMixin`)."""

    optimizer_config: OptimizerConfig = OptimizerConfig()
    seed: int = 0

    def step_generator(self, device, offset: int = 0) -> torch.Generator:
        return training_generator(self.seed + offset, self._trainer, device)

    def validation_generator(self, batch_idx: int, device, offset: int = 0) -> torch.Generator:
        return derived_generator(self.seed + 1 + offset, batch_idx, self.global_rank, device)

    def configure_optimizers(self):
        return self.optimizer_config.build(self)
