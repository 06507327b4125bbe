"""The Shapeable protocol (DESIGN 4, "the seam"): what a LightningModule needs for trajectory shaping.

A module is shapeable when it builds its trajectories by calling a :class:`JumpPolicy` that it holds as the
attribute ``jump_policy``, moves on a :class:`MixturePath` held as ``path``, and declares ``vocab_size`` and
``seq_len`` in its hyper-parameters. Plugins of other model families satisfy it the same way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.modules.loading import load_module
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
                        "See lightning_tsdfm.shaping.Shapeable (DESIGN 4, 'the seam').")


def check_compass_matches(compass, module, compass_path: str) -> None:
    """The compass must score states of the module's vocabulary, source and length."""
    name = type(module).__name__
    vocab, length = module.hparams["vocab_size"], module.hparams["seq_len"]
    if compass.hparams["vocab_size"] != vocab:
        raise ValueError(f"The compass {compass_path} has vocab_size={compass.hparams['vocab_size']} but {name} "
                         f"has {vocab}: train the compass against this model's teacher and data.")
    if compass.source_name != module.path.source.name:
        raise ValueError(f"The compass {compass_path} scores states of the {compass.source_name!r} source but {name} "
                         f"uses the {module.path.source.name!r} source: train a compass for that source.")
    if compass.hparams["seq_len"] < length:
        raise ValueError(f"The compass {compass_path} was built for seq_len={compass.hparams['seq_len']} but {name} "
                         f"makes sequences of {length} tokens.")


def load_matching_compass(path: str, module, device="cpu"):
    """The compass checkpoint at ``path``, frozen on ``device``, after checking it scores ``module``'s states."""
    compass = load_module(path, expected_kind="compass", map_location=device).requires_grad_(False)
    check_compass_matches(compass, module, path)
    return compass
