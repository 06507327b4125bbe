"""Quiet, deterministic Lightning runs for tests: a trainer and a fit that leaves last.ckpt."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.data import SyntheticDataModule
from lightning_tsdfm.models import TransformerConfig

#: the tiny language and teacher of the module-level fixtures (``teacher_ckpt`` in conftest.py)
TINY_VOCAB, TINY_LEN = 8, 8
TINY_TEACHER = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)


def quick_trainer(root, max_steps: int, callbacks=(), val_batches: int = 0) -> L.Trainer:
    return L.Trainer(max_steps=max_steps, default_root_dir=root, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, limit_val_batches=val_batches, callbacks=list(callbacks),
                     deterministic=True, num_sanity_val_steps=0)


def fit_checkpoint(module, root, steps: int, datamodule) -> Path:
    """Fit ``module`` for ``steps`` steps; returns root/last.ckpt."""
    quick_trainer(root, steps, [ModelCheckpoint(dirpath=root, save_last=True)]).fit(module, datamodule=datamodule)
    return Path(root) / "last.ckpt"


def tiny_synthetic(**overrides) -> SyntheticDataModule:
    """A tiny synthetic language, V = 8 tokens in sequences of L = 8, 16 training sequences in batches of 4."""
    return SyntheticDataModule(**{"vocab_size": TINY_VOCAB, "num_states": 4, "seq_len": TINY_LEN, "num_train": 16,
                                  "num_val": 4, "batch_size": 4, **overrides})


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def import_benchmark(name: str, tmp_path, monkeypatch):
    """``benchmarks/<name>.py`` as a module whose results go under ``tmp_path/results``, with a bare ``sys.argv``."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module(name)
    monkeypatch.setattr(module.results_io, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", [f"{name}.py"])
    return module
TINY_BACKBONE = ["--model.init_args.backbone.hidden_size=32", "--model.init_args.backbone.num_layers=1",
                 "--model.init_args.backbone.num_heads=2", "--model.init_args.backbone.cond_size=32"]
TINY_SYNTHETIC = ["--data.init_args.vocab_size=16", "--data.init_args.num_states=8", "--data.init_args.num_train=64",
                  "--data.init_args.num_val=16", "--data.init_args.batch_size=8", "--data.init_args.seq_len=16"]


def tiny_fit_args(config: str, root, *extra: str, steps: int = 2) -> list[str]:
    """``tsdfm fit`` arguments for ``configs/<config>`` with every output under ``root``, a cheap generation
    monitor, no wall-clock cap and ``steps`` optimizer steps (add TINY_BACKBONE / TINY_SYNTHETIC as needed)."""
    import yaml

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cfg = read_config(CONFIGS / config)  # the data group read in: the config is written elsewhere
    for callback in cfg["trainer"]["callbacks"]:
        if callback["class_path"].endswith("GenerationMonitor"):
            callback["init_args"].update(num_samples=2, steps=2)
    # the run directory is one key: the logger's save_dir and the checkpoint dirpath follow it
    cfg["trainer"].update(accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                          default_root_dir=str(root), max_time=None, max_steps=steps, limit_val_batches=1)
    path = root / f"config_{config}"
    path.write_text(yaml.safe_dump(cfg))
    return ["fit", "--config", str(path), *extra]


class SlowSteps(L.Callback):
    """Sleeps after every training batch: a run slow enough to be killed mid-way by a test."""

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import time

        time.sleep(self.seconds)
