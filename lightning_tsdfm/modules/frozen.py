"""Where plugins import the frozen teacher from; it lives in :mod:`lightning_tsdfm.checkpoints.frozen`."""

from lightning_tsdfm.checkpoints.frozen import FrozenReference, FrozenTeacherMixin

__all__ = ["FrozenReference", "FrozenTeacherMixin"]
