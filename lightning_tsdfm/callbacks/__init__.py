"""Lightning callbacks of the library: checkpoints that keep the final step, generation monitoring, and
trajectory shaping (``TrajectoryShaper``, defined with the rest of shaping in :mod:`lightning_tsdfm.shaping`)."""

from lightning_tsdfm.callbacks.final_checkpoint import FinalCheckpoint
from lightning_tsdfm.callbacks.generation_monitor import GenerationMonitor
from lightning_tsdfm.shaping.shaper import TrajectoryShaper

__all__ = ["FinalCheckpoint", "GenerationMonitor", "TrajectoryShaper"]
