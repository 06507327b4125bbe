from lightning_tsdfm.callbacks.generation_monitor import GenerationMonitor

__all__ = ["GenerationMonitor"]
