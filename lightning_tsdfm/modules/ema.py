"""TargetEMA: Lightning's EMAWeightAveraging, whose averaged copy also serves as the distillation target network."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging


class TargetEMA(EMAWeightAveraging):
    """EMA of the student; ``averaged_module(student)`` is the averaged copy (the student itself before fit starts)."""

    def averaged_module(self, module: L.LightningModule) -> L.LightningModule:
        average = self._average_model  # the one private attribute we read: Lightning keeps the copy there
        return module if average is None else average.module
