"""Checkpoints, the floor every other package stands on (it imports none of them but the backbone's config):

- :mod:`~lightning_tsdfm.checkpoints.file`: the file read safely (weights only, local, whole);
- :mod:`~lightning_tsdfm.checkpoints.header`: the ``tsdfm`` header every module writes and every loader reads;
- :mod:`~lightning_tsdfm.checkpoints.classes`: the module classes a checkpoint may name (the library registers its own);
- :mod:`~lightning_tsdfm.checkpoints.loading`: a checkpoint read once, and the module it holds built from that read;
- :mod:`~lightning_tsdfm.checkpoints.fits`: whether a model fits the data or the model it serves;
- :mod:`~lightning_tsdfm.checkpoints.frozen`: frozen networks held by reference, the frozen teacher;
- :mod:`~lightning_tsdfm.checkpoints.teacher`: the teacher checkpoint a module is built from, read once and adopted.
"""

from lightning_tsdfm.checkpoints.file import CHECKPOINT_GLOBALS, allow_in_checkpoints, check_checkpoint_file
from lightning_tsdfm.checkpoints.fits import card_differences, check_fits
from lightning_tsdfm.checkpoints.frozen import FrozenReference, FrozenTeacherMixin, state_dict_fingerprint
from lightning_tsdfm.checkpoints.classes import register_module_classes
from lightning_tsdfm.checkpoints.loading import load_module, read_checkpoint, read_checkpoint_header
from lightning_tsdfm.checkpoints.teacher import TeacherCheckpoint, adopt, read_teacher

__all__ = ["CHECKPOINT_GLOBALS", "FrozenReference", "FrozenTeacherMixin", "TeacherCheckpoint", "adopt",
           "allow_in_checkpoints", "card_differences", "check_checkpoint_file", "check_fits", "load_module",
           "read_checkpoint", "read_checkpoint_header", "read_teacher", "register_module_classes",
           "state_dict_fingerprint"]
