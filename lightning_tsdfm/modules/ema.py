"""TargetEMA: Lightning's EMAWeightAveraging, whose averaged copy also serves as the distillation target network.

Under FSDP2 (``--trainer.strategy=fsdp2``) the student's parameters are sharded; the averaged copy stays a full
replica on every rank (it is made before the student is sharded, which FSDP2 requires: a sharded module cannot be
copied), is updated from the gathered parameters, and is written back shard by shard. Its forward passes, which a
rank makes or skips by its own batch, then need no collective.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch.optim.swa_utils import AveragedModel

from lightning_tsdfm.modules.fully_sharded import copy_full_into, full_state_dict, full_tensor, is_sharded, tensors


class _GatheredView:
    """The parameters and buffers of a sharded module, gathered whole: what AveragedModel.update_parameters reads."""

    def __init__(self, module) -> None:
        self.module = module

    def parameters(self):
        return [full_tensor(p.detach()) for p in self.module.parameters()]

    def buffers(self):
        return list(self.module.buffers())


class _ReplicaAverage(AveragedModel):
    """AveragedModel that averages a sharded module's gathered parameters into its full replica."""

    def update_parameters(self, model) -> None:
        super().update_parameters(_GatheredView(model) if is_sharded(model) else model)


class TargetEMA(EMAWeightAveraging):
    """EMA of the student; ``averaged_module(student)`` is the averaged copy (the student itself before fit starts)."""

    def averaged_module(self, module: L.LightningModule) -> L.LightningModule:
        average = self._average_model  # private: Lightning keeps the copy there (pinned, see pyproject.toml)
        return module if average is None else average.module

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """The replica, copied from the student before ``configure_model`` shards it (Lightning's own setup calls
        ``configure_model`` first, and a sharded module cannot be copied)."""
        if stage == "fit":
            device = self._device or pl_module.device
            self._average_model = _ReplicaAverage(model=pl_module, device=device, use_buffers=self._use_buffers,
                                                  **self._kwargs)

    def _swap_models(self, pl_module: L.LightningModule) -> None:
        if not is_sharded(pl_module):
            return super()._swap_models(pl_module)
        for average, current in zip(tensors(self._average_model.module), tensors(pl_module)):
            whole = full_tensor(current.detach()).clone()
            copy_full_into(current, average.data)
            average.data.copy_(whole)

    def _copy_average_to_current(self, pl_module: L.LightningModule) -> None:
        if not is_sharded(pl_module):
            return super()._copy_average_to_current(pl_module)
        for average, current in zip(tensors(self._average_model.module), tensors(pl_module)):
            copy_full_into(current, average.data)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """As Lightning's, but for a sharded student: the averaged weights, which the strategy has already loaded
        into it from ``state_dict`` (and removed from the checkpoint), are gathered into the replica, and the student's
        own weights (``current_model_state``, whole in the file) are written back shard by shard."""
        if not (is_sharded(pl_module) and self._average_model is not None and "current_model_state" in checkpoint):
            return super().on_load_checkpoint(trainer, pl_module, checkpoint)
        averaged = checkpoint["state_dict"] if "state_dict" in checkpoint else full_state_dict(pl_module)
        average_state = {"module." + name: value for name, value in averaged.items()}
        self._average_model.load_state_dict(average_state | checkpoint["averaging_state"])
        current = checkpoint["current_model_state"]
        for name, tensor in [*pl_module.named_parameters(), *pl_module.named_buffers()]:
            if name in current:
                copy_full_into(tensor, current[name])
