"""The Shapeable protocol: what a LightningModule needs for trajectory shaping.

A module is shapeable when it builds its trajectories by calling a :class:`JumpPolicy` that it holds as the
attribute ``jump_policy``, moves on a :class:`MixturePath` held as ``path``, and declares ``vocab_size`` and
``seq_len`` in its hyper-parameters. Plugins of other model families satisfy it the same way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.paths import MixturePath


@runtime_checkable
class Shapeable(Protocol):
    jump_policy: JumpPolicy
    path: MixturePath


def check_shapeable(module) -> None:
    """Raise a TypeError that names what ``module`` lacks to be shaped."""
    name = type(module).__name__
    missing = []
    if not isinstance(getattr(module, "jump_policy", None), JumpPolicy):
        missing.append("an attribute `jump_policy` (a JumpPolicy that its trajectory construction calls for every jump)")
    if not isinstance(getattr(module, "path", None), MixturePath):
        missing.append("an attribute `path` (the MixturePath its states live on)")
    hparams = getattr(module, "hparams", {})
    for key in ("vocab_size", "seq_len"):
        if key not in hparams:
            missing.append(f"the hyper-parameter `{key}`")
    if missing:
        raise TypeError(f"TrajectoryShaper cannot shape {name}: it needs " + "; ".join(missing) + ". "
                        "See lightning_tsdfm.shaping.Shapeable.")
