"""Quiet, deterministic Lightning runs for tests: a trainer and a fit that leaves last.ckpt."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


def quick_trainer(root, max_steps: int, callbacks=(), val_batches: int = 0) -> L.Trainer:
    return L.Trainer(max_steps=max_steps, default_root_dir=root, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, limit_val_batches=val_batches, callbacks=list(callbacks),
                     deterministic=True, num_sanity_val_steps=0)


def fit_checkpoint(module, root, steps: int, datamodule) -> Path:
    """Fit ``module`` for ``steps`` steps; returns root/last.ckpt."""
    quick_trainer(root, steps, [ModelCheckpoint(dirpath=root, save_last=True)]).fit(module, datamodule=datamodule)
    return Path(root) / "last.ckpt"
