from lightning_tsdfm.shaping.guided_jump import GuidedJump, ShapingStatistics
from lightning_tsdfm.shaping.protocol import Shapeable, check_shapeable
from lightning_tsdfm.shaping.selection import (
    ArgminSelection,
    BoltzmannSelection,
    ImportanceSelection,
    SelectionPolicy,
    SequenceToTokenSelection,
    make_selection,
)
from lightning_tsdfm.shaping.settings import ShapingSettings
from lightning_tsdfm.shaping.shaper import TrajectoryShaper

__all__ = [
    "ArgminSelection",
    "BoltzmannSelection",
    "GuidedJump",
    "ImportanceSelection",
    "SelectionPolicy",
    "SequenceToTokenSelection",
    "Shapeable",
    "ShapingSettings",
    "ShapingStatistics",
    "TrajectoryShaper",
    "check_shapeable",
    "make_selection",
]
