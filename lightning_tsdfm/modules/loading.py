"""Load any lightning-tsdfm checkpoint as its own module class, with a clear error for the wrong kind."""

from __future__ import annotations

import importlib
from pathlib import Path

import lightning as L
import torch


def read_checkpoint(path: str | Path, expected_kind: str | tuple[str, ...] | None = None) -> dict:
    """The whole checkpoint dict, after checking it is a lightning-tsdfm checkpoint of an expected kind."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    header = checkpoint.get("tsdfm") if isinstance(checkpoint, dict) else None
    if header is None:
        raise ValueError(f"{path} is not a lightning-tsdfm checkpoint (no 'tsdfm' header): train it with `tsdfm fit`.")
    kinds = (expected_kind,) if isinstance(expected_kind, str) else expected_kind
    if kinds is not None and header["kind"] not in kinds:
        raise ValueError(
            f"{path} is a {header['kind']!r} checkpoint, but a {' or '.join(map(repr, kinds))} checkpoint is needed here."
        )
    return checkpoint


def read_checkpoint_header(path: str | Path) -> dict:
    """The ``tsdfm`` header (kind, class_path, data_card) of a checkpoint file."""
    return read_checkpoint(path)["tsdfm"]


def load_module(path: str | Path, expected_kind: str | tuple[str, ...] | None = None, map_location="cpu") -> L.LightningModule:
    """Instantiate the checkpoint's module class and load its weights (and data card)."""
    header = read_checkpoint(path, expected_kind)["tsdfm"]
    module_name, _, class_name = header["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as err:
        raise ImportError(f"{path} holds a {header['class_path']}, which is not installed: install the plugin that "
                          f"provides {module_name.split('.')[0]!r} (e.g. `pip install plugins/<name>`).") from err
    return cls.load_from_checkpoint(str(path), map_location=map_location, weights_only=False).eval()
