"""AtomicCheckpointIO: Lightning's TorchCheckpointIO whose saves never leave a truncated checkpoint behind, and whose
loads name an unreadable checkpoint file instead of failing deep inside torch.

A local checkpoint is written to a temporary file in its own directory, flushed to disk, then renamed over its
path (``os.replace``, atomic on one file system): a save that fails (a full disk, a crash, a kill) leaves the
previous checkpoint whole and removes its temporary file. Remote paths (``s3://``, ...) keep Lightning's own save,
but are never loaded (:func:`~lightning_tsdfm.checkpoints.file.check_local_checkpoint`).
"""

from __future__ import annotations

from typing import Any, Optional

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from lightning_tsdfm.atomic_file import atomic_write
from lightning_tsdfm.checkpoints.file import check_checkpoint_file, unreadable_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`~lightning.pytorch.plugins.io.TorchCheckpointIO` that saves a local checkpoint atomically (temporary
    file, then ``os.replace``) and refuses to load a remote or unreadable one with a message naming the file."""

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_write(path, "wb") as f:
            torch.save(checkpoint, f)

    @override
    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only: Optional[bool] = None) -> dict[str, Any]:
        check_checkpoint_file(path)  # a remote path is refused: Lightning would unpickle a download unchecked
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        except (RuntimeError, EOFError) as err:
            raise unreadable_checkpoint(path, f"torch could not read it: {str(err).splitlines()[0][:120]}") from err


def install_atomic_checkpoint_io(trainer: L.Trainer) -> L.Trainer:
    """Give ``trainer`` an :class:`AtomicCheckpointIO` where it has Lightning's plain TorchCheckpointIO (a
    strategy's own or a user's CheckpointIO is left alone); returns ``trainer``."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
    return trainer
