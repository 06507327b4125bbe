"""One run directory per run, named once by ``trainer.default_root_dir``; the places a run writes follow from it:

    logger save_dir             = default_root_dir          (TensorBoard: <root>/logs/version_N)
    ModelCheckpoint dirpath     = default_root_dir/checkpoints   (unless a config names its own)

so a run moves elsewhere with one override, ``--trainer.default_root_dir=runs/NAME``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

#: the checkpoint folder inside the run directory
CHECKPOINTS = "checkpoints"


def link_logger_to_run_directory(parser) -> None:
    """Every logger's ``save_dir`` is the run directory (Lightning's default, the working directory, when none is
    given). A parse-time link: it holds before the loggers' arguments are checked, for one logger or a list."""
    parser.link_arguments("trainer.default_root_dir", "trainer.logger.init_args.save_dir",
                          compute_fn=lambda root: os.getcwd() if root is None else str(root), apply_on="parse")


def _is_model_checkpoint(class_path: Any) -> bool:
    if not isinstance(class_path, str) or "." not in class_path:
        return False
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    return isinstance(cls, type) and issubclass(cls, ModelCheckpoint)


def place_checkpoints_in_run_directory(trainer: Any) -> None:
    """Give the parsed ``trainer`` config's ModelCheckpoint callbacks without a ``dirpath`` the run directory's
    ``checkpoints`` folder (in place). Without a ``default_root_dir`` nothing changes (Lightning's defaults)."""
    root = trainer.get("default_root_dir")
    if not root:
        return
    for callback in trainer.get("callbacks") or []:
        init_args = callback.get("init_args") if hasattr(callback, "get") else None
        if init_args is not None and init_args.get("dirpath") is None and _is_model_checkpoint(callback.get("class_path")):
            init_args["dirpath"] = os.path.join(str(root), CHECKPOINTS)
