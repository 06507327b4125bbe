"""AdamW with linear warm-up, then constant: the optimizer of every module here."""

from __future__ import annotations

import torch


def adamw_with_warmup(module: torch.nn.Module, lr: float, weight_decay: float, warmup_steps: int):
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
