"""One run directory per run, named once by ``trainer.default_root_dir``; the places a run writes follow from it:

    logger save_dir             = default_root_dir          (TensorBoard: <root>/logs/version_N)
    ModelCheckpoint dirpath     = default_root_dir/checkpoints   (unless a config names its own)

so a run moves elsewhere with one override, ``--trainer.default_root_dir=runs/NAME``.

A ``fit`` holds its run directory while it runs (:func:`run_directory_lock`): a second run started into the same
directory is refused instead of writing its checkpoints beside the first's (``last-v1.ckpt``).
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_tsdfm.errors import UserError

#: the checkpoint folder inside the run directory
CHECKPOINTS = "checkpoints"
#: the lock file of a run directory in use: "<pid> <host>" of the run that holds it
LOCK = "tsdfm.lock"


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



@contextmanager
def run_directory_lock(root: str | os.PathLike) -> Iterator[Path]:
    """Hold the run directory ``root`` for the block: its lock file (:data:`LOCK`, created with ``O_EXCL``) names
    this process, and is removed at the end. A lock of a process that no longer runs on this host (a killed run) is
    taken over; one of a live process, or of another host (whose processes cannot be checked), is refused."""
    path = Path(root) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = f"{os.getpid()} {socket.gethostname()}\n"
    for _ in range(3):  # a stale lock removed, then created again; another run may win that race
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is not None and _is_running(holder):
                raise _in_use(root, path, holder) from None
            if holder is not None and _read(path) == holder:  # still the same stale lock: take it over
                path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(mine)
        break
    else:
        raise _in_use(root, path, _read(path) or "")
    try:
        yield path
    finally:
        if _read(path) == mine:
            path.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    """The lock's content, or None when it is gone."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _is_running(holder: str) -> bool:
    """Whether the process a lock names may still run: a live pid on this host, or anything that cannot be checked
    (another host, an unreadable lock)."""
    pid, _, host = holder.strip().partition(" ")
    if not pid.isdigit() or host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _in_use(root, path: Path, holder: str) -> UserError:
    pid, _, host = holder.strip().partition(" ")
    who = f"process {pid} on {host}" if pid.isdigit() and host else "another run"
    return UserError(f"The run directory {root} is in use by another run ({who} holds {path}): wait for it to "
                     f"finish, or write elsewhere (another --trainer.default_root_dir). If no run uses it any more, "
                     f"delete {path}.")
