"""lightning-tsdfm: trajectory-shaped discrete flow matching as a Lightning plugin."""

from lightning_tsdfm.callbacks import FinalCheckpoint, GenerationMonitor
from lightning_tsdfm.data import StreamingTextDataModule, SyntheticDataModule, TextDataModule
from lightning_tsdfm.jumps import BlindJump, JumpPolicy, sample_categorical
from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules import (
    CausalLMModule,
    CompassModule,
    DenoiserModule,
    PathLMModule,
    StudentModule,
    TeacherModule,
    load_module,
)
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import (
    LogLinearScheduler,
    MaskSource,
    MixturePath,
    PolynomialScheduler,
    Scheduler,
    UniformSource,
    make_source,
)
from lightning_tsdfm.shaping import GuidedJump, Shapeable, ShapingSettings, TrajectoryShaper

__all__ = [
    "BlindJump",
    "CausalLMModule",
    "CompassModule",
    "DenoiserModule",
    "DiffusionTransformer",
    "FinalCheckpoint",
    "GenerationMonitor",
    "GuidedJump",
    "JumpPolicy",
    "LogLinearScheduler",
    "MaskSource",
    "MixturePath",
    "OptimizerConfig",
    "PathLMModule",
    "PolynomialScheduler",
    "Scheduler",
    "Shapeable",
    "ShapingSettings",
    "StreamingTextDataModule",
    "StudentModule",
    "SyntheticDataModule",
    "TeacherModule",
    "TextDataModule",
    "TrajectoryShaper",
    "TransformerConfig",
    "UniformSource",
    "load_module",
    "make_source",
    "sample_categorical",
]
__version__ = "0.1.0"
