"""StepTimer: the wall-clock seconds of every training batch, for the benchmarks that time training."""

from __future__ import annotations

import time

import lightning as L
import torch


class StepTimer(L.Callback):
    """Seconds of every training batch (forward, targets, backward, optimizer), the GPU synchronised at its end."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._start)
