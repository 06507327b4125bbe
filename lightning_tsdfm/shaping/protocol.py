"""The Shapeable protocol: what a LightningModule needs for trajectory shaping.

A module is shapeable when it

- builds its trajectories by calling a :class:`JumpPolicy` that it holds as the attribute ``jump_policy``, in the
  library's time (t = 0 the source, t = 1 the data): ``policy(x_t, probs, t, h, path, generator)`` or
  ``policy.transition(x_t, kernel, t, h, generator)``;
- moves on a :class:`MixturePath` held as ``path``;
- declares its data vocabulary V (the mask id excluded) and sequence length: ``seq_len``, and ``vocab_size`` or,
  for a module whose own ``vocab_size`` counts the mask (MDLM's ``Diffusion`` sets ``self.vocab_size = V + 1``),
  ``shaping_vocab_size``, which takes precedence: attributes or properties of the module, or else
  hyper-parameters (the library's modules);
- when it names its mask id (``mask_index``, as MDLM does, ``mask_id`` or ``mask_token_id``), builds its path on
  that id: a :class:`MaskSource` of V data tokens puts the mask at V;
- declares ``time_convention`` when its own time runs the other way: ``noise_at_1`` (t = 1 is noise, as in MDLM's
  and SEDD's code) or ``data_at_1`` (the library's, the default). :func:`library_time` converts a time of the
  module into the library's, t_library = 1 - t for ``noise_at_1`` (the map is its own inverse).

Plugins and modules written without this library's base classes satisfy it the same way. A module that cannot be
shaped by construction says why in a class attribute ``not_shapeable_because`` (a sentence), which the refusal quotes.
"""

from __future__ import annotations

from typing import Protocol, get_type_hints, runtime_checkable

from torch import Tensor

from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.paths import MixturePath

#: the time conventions a module may declare: where t = 1 lies
TIME_CONVENTIONS = ("data_at_1", "noise_at_1")


@runtime_checkable
class Shapeable(Protocol):
    """The attributes of a shapeable module, each checked by :func:`check_shapeable` to be of its annotated type; the
    data vocabulary and length it declares besides may be hyper-parameters, so they are checked apart
    (:func:`declared_vocab_size`, :func:`declared_seq_len`)."""

    jump_policy: JumpPolicy
    path: MixturePath


#: what each attribute of :class:`Shapeable` is, as a refusal names it
SHAPEABLE_ROLES = {
    "jump_policy": "a JumpPolicy that its trajectory construction calls for every jump",
    "path": "the MixturePath its states live on",
}


def missing_attributes(module) -> list[str]:
    """The attributes of :class:`Shapeable` that ``module`` lacks or holds with another type than the protocol's, as a
    refusal names them."""
    return [f"an attribute `{name}` ({SHAPEABLE_ROLES[name]})" for name, kind in get_type_hints(Shapeable).items()
            if not isinstance(getattr(module, name, None), kind)]


def declared_size(module, name: str) -> int | None:
    """``module.<name>`` (an attribute or property), else ``module.hparams[name]``; None when neither declares it."""
    value = getattr(module, name, None)
    if value is None:
        value = getattr(module, "hparams", {}).get(name)
    return value


#: where a module may declare its data vocabulary V, in order of precedence
VOCAB_NAMES = ("shaping_vocab_size", "vocab_size")

#: where a module may name its mask id (MDLM: ``mask_index``)
MASK_NAMES = ("mask_index", "mask_id", "mask_token_id")


def vocab_declaration(module) -> tuple[str, int] | None:
    """(name, V) of the first of :data:`VOCAB_NAMES` that ``module`` declares; None when it declares neither."""
    for name in VOCAB_NAMES:
        value = declared_size(module, name)
        if value is not None:
            return name, int(value)
    return None


def declared_vocab_size(module) -> int:
    """The data vocabulary V a module declares (``shaping_vocab_size``, else ``vocab_size``; the mask id, when
    there is one, is V)."""
    declaration = vocab_declaration(module)
    if declaration is None:
        _require(module, "vocab_size")
    return declaration[1]


def declared_mask_id(module) -> tuple[str, int] | None:
    """(name, id) of the mask id ``module`` names as an attribute (:data:`MASK_NAMES`); None when it names none."""
    for name in MASK_NAMES:
        value = getattr(module, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return name, value
    return None


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
    missing = missing_attributes(module)
    if vocab_declaration(module) is None:
        missing.append("`vocab_size` or `shaping_vocab_size` (the data tokens, the mask excluded: a property or "
                       "attribute, or a hyper-parameter)")
    if declared_size(module, "seq_len") is None:
        missing.append("`seq_len` (a property or attribute, or a hyper-parameter)")
    if missing:
        raise TypeError(f"TrajectoryShaper cannot shape {name}: it needs " + "; ".join(missing) + ". "
                        "See lightning_tsdfm.shaping.Shapeable.")
    time_convention(module)
    _check_mask_id(module, module.path)
    _check_vocabulary(module, module.path)


def _check_mask_id(module, path: MixturePath) -> None:
    """The mask id the module names must be the one its path's source puts the mask at."""
    named, source = declared_mask_id(module), path.source
    if named is None or getattr(source, "mask_id", None) is None or named[1] == source.mask_id:
        return
    attribute, mask = named
    raise ValueError(
        f"{type(module).__name__}.{attribute} = {mask} but its path's {type(source).__name__}({source.vocab_size}) "
        f"puts the mask at id {source.mask_id}: build the path on the {mask} data tokens, "
        f"{type(source).__name__}({mask}) ({type(source).__name__}(V) puts the mask at V; a vocab_size that counts "
        f"the mask, as MDLM's does, is one too many).")


def _check_vocabulary(module, path: MixturePath) -> None:
    """The declared data vocabulary must be the path's; a ``vocab_size`` that counts the mask is named as such."""
    name, vocab = vocab_declaration(module)
    tokens = path.source.vocab_size
    if vocab == tokens:
        return
    if name == "vocab_size" and vocab == tokens + 1 and getattr(path.source, "mask_id", None) is not None:
        raise ValueError(
            f"{type(module).__name__} declares vocab_size={vocab} but its path's source has {tokens} data tokens: "
            f"its vocab_size counts the mask id (as MDLM's does). Keep it, and declare the data tokens for shaping "
            f"as an attribute set in __init__: `self.shaping_vocab_size = {tokens}`.")
    raise ValueError(f"{type(module).__name__} declares {name}={vocab} but its path's source has {tokens} data tokens: "
                     f"declare the data tokens only (the mask id is V, not one of them).")
