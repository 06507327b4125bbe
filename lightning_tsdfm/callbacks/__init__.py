from lightning_tsdfm.callbacks.final_checkpoint import FinalCheckpoint
from lightning_tsdfm.callbacks.generation_monitor import GenerationMonitor

__all__ = ["FinalCheckpoint", "GenerationMonitor"]
