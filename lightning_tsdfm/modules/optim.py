"""AdamW with linear warm-up, then constant: the optimizer of every module here, configured by one argument group,
:class:`OptimizerConfig` (``--model.init_args.optimizer.lr=...``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch

from lightning_tsdfm.checkpoints.file import allow_in_checkpoints
from lightning_tsdfm.checkpoints.loading import read_flat_group


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW (betas 0.9, 0.98) whose learning rate rises linearly to ``lr`` over ``warmup_steps``, then stays.

    Args:
        lr: AdamW peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear learning-rate warm-up, in optimizer steps.
    """

    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 200

    @classmethod
    def of(cls, value: "OptimizerConfig | dict") -> "OptimizerConfig":
        """``value`` as an OptimizerConfig (a checkpoint written by the CLI holds it as a dict)."""
        return value if isinstance(value, cls) else cls(**value)

    @classmethod
    def from_flat_hparams(cls, hparams: dict) -> dict | None:
        """The optimizer group of hyper-parameters saved flat (``lr``, ``weight_decay``, ``warmup_steps``, as earlier
        versions did), as a dict; None when there are none."""
        flat = {f.name: hparams[f.name] for f in fields(cls) if f.name in hparams}
        return asdict(cls(**flat)) if flat else None

    def build(self, module: torch.nn.Module) -> dict:
        """Lightning's ``configure_optimizers`` answer for ``module``."""
        return adamw_with_warmup(module, self.lr, self.weight_decay, self.warmup_steps)


allow_in_checkpoints(OptimizerConfig)
read_flat_group("optimizer", OptimizerConfig.from_flat_hparams)


def adamw_with_warmup(module: torch.nn.Module, lr: float, weight_decay: float, warmup_steps: int):
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
