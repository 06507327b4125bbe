"""The Shapeable protocol: what a LightningModule needs for trajectory shaping.

A module is shapeable when it

- builds its trajectories by calling a :class:`JumpPolicy` that it holds as the attribute ``jump_policy``, in the
  library's time (t = 0 the source, t = 1 the data): ``policy(x_t, probs, t, h, path, generator)`` or
  ``policy.transition(x_t, kernel, t, h, generator)``;
- moves on a :class:`MixturePath` held as ``path``;
- declares its vocabulary (data tokens, the mask id excluded) and sequence length as ``vocab_size`` and
  ``seq_len``: attributes or properties of the module, or else hyper-parameters (the library's modules);
- declares ``time_convention`` when its own time runs the other way: ``noise_at_1`` (t = 1 is noise, as in MDLM's
  and SEDD's code) or ``data_at_1`` (the library's, the default). :func:`library_time` converts a time of the
  module into the library's, t_library = 1 - t for ``noise_at_1`` (the map is its own inverse).

Plugins and modules written without this library's base classes satisfy it the same way. A module that cannot be
shaped by construction says why in a class attribute ``not_shapeable_because`` (a sentence), which the refusal quotes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.paths import MixturePath

#: the time conventions a module may declare: where t = 1 lies
TIME_CONVENTIONS = ("data_at_1", "noise_at_1")


@runtime_checkable
class Shapeable(Protocol):
    jump_policy: JumpPolicy
    path: MixturePath


def declared_size(module, name: str) -> int | None:
    """``module.<name>`` (an attribute or property), else ``module.hparams[name]``; None when neither declares it."""
    value = getattr(module, name, None)
    if value is None:
        value = getattr(module, "hparams", {}).get(name)
    return value


def declared_vocab_size(module) -> int:
    """The data vocabulary V a module declares (``vocab_size``; the mask id, when there is one, is V)."""
    return _require(module, "vocab_size")


def declared_seq_len(module) -> int:
    """The sequence length a module declares (``seq_len``)."""
    return _require(module, "seq_len")


def time_convention(module) -> str:
    """The module's declared ``time_convention`` (default ``data_at_1``, the library's), checked."""
    convention = getattr(module, "time_convention", "data_at_1")
    if convention not in TIME_CONVENTIONS:
        raise ValueError(f"{type(module).__name__} declares time_convention={convention!r}: choose 'data_at_1' "
                         f"(t = 1 is data, the library's) or 'noise_at_1' (t = 1 is noise, as MDLM's code).")
    return convention


def library_time(module, t: Tensor) -> Tensor:
    """A time of ``module`` in the library's convention: t for ``data_at_1``, 1 - t for ``noise_at_1``.
    Applied to a library time it gives the module's (the map is its own inverse)."""
    return 1 - t if time_convention(module) == "noise_at_1" else t


def _require(module, name: str) -> int:
    value = declared_size(module, name)
    if value is None:
        raise TypeError(f"{type(module).__name__} declares no `{name}`: add a property or attribute `{name}` (or a "
                        f"hyper-parameter of that name). See lightning_tsdfm.shaping.Shapeable.")
    return int(value)


def check_shapeable(module) -> None:
    """Raise a TypeError that names what ``module`` lacks to be shaped (a ValueError for a wrong declaration)."""
    name = type(module).__name__
    reason = getattr(module, "not_shapeable_because", None)
    if reason:
        raise TypeError(f"TrajectoryShaper does not apply to {name}: {reason}")
    missing = []
    if not isinstance(getattr(module, "jump_policy", None), JumpPolicy):
        missing.append("an attribute `jump_policy` (a JumpPolicy that its trajectory construction calls for every jump)")
    path = getattr(module, "path", None)
    if not isinstance(path, MixturePath):
        missing.append("an attribute `path` (the MixturePath its states live on)")
    for key in ("vocab_size", "seq_len"):
        if declared_size(module, key) is None:
            missing.append(f"`{key}` (a property or attribute, or a hyper-parameter)")
    if missing:
        raise TypeError(f"TrajectoryShaper cannot shape {name}: it needs " + "; ".join(missing) + ". "
                        "See lightning_tsdfm.shaping.Shapeable.")
    time_convention(module)
    vocab = declared_vocab_size(module)
    if vocab != path.source.vocab_size:
        raise ValueError(f"{name} declares vocab_size={vocab} but its path's source has {path.source.vocab_size} data "
                         f"tokens: declare the data tokens only (the mask id is vocab_size, not one of them).")
