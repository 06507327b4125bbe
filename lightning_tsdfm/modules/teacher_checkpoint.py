"""Where plugins and tests import the teacher checkpoint from; it lives in :mod:`lightning_tsdfm.checkpoints.teacher`."""

from lightning_tsdfm.checkpoints.teacher import TeacherCheckpoint, adopt, read_teacher

__all__ = ["TeacherCheckpoint", "adopt", "read_teacher"]
