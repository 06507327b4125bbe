"""A lightning-tsdfm checkpoint read once (:func:`read_checkpoint`: the file read safely, its header and the classes
it names checked) and the module it holds built from what was read (:func:`load_module`), as its own class, with a
clear error for the wrong kind, and with hyper-parameters saved by earlier versions under their current names."""

from __future__ import annotations

import contextvars
import inspect
from pathlib import Path
from typing import Callable

import lightning as L
from lightning.pytorch.cli import instantiate_module
from lightning.pytorch.utilities import rank_zero_warn

from lightning_tsdfm.checkpoints.classes import check_named_classes, module_class
from lightning_tsdfm.checkpoints.file import check_local_checkpoint, safe_load
from lightning_tsdfm.checkpoints.header import canonical_kind, header_of
from lightning_tsdfm.errors import UserError


def read_checkpoint(path: str | Path, expected_kind: str | tuple[str, ...] | None = None) -> dict:
    """The whole checkpoint dict, read safely, after checking it is a local lightning-tsdfm checkpoint of an expected
    kind that names registered classes only (:func:`check_named_classes`)."""
    check_local_checkpoint(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    checkpoint = safe_load(path)
    header = header_of(checkpoint, path)
    check_named_classes(checkpoint, path)
    kinds = (expected_kind,) if isinstance(expected_kind, str) else expected_kind
    kinds = None if kinds is None else tuple(map(canonical_kind, kinds))
    if kinds is not None and header["kind"] not in kinds:
        raise UserError(
            f"{path} is a {header['kind']!r} checkpoint, but a {' or '.join(map(repr, kinds))} checkpoint is needed here."
        )
    return checkpoint


def read_checkpoint_header(path: str | Path) -> dict:
    """The ``tsdfm`` header (kind, class_path, data_card) of a checkpoint file."""
    return read_checkpoint(path)["tsdfm"]


def load_module(path: str | Path, expected_kind: str | tuple[str, ...] | None = None, map_location="cpu") -> L.LightningModule:
    """Instantiate the checkpoint's (registered) module class and load its weights (and data card), safely, from
    one read of the file."""
    checkpoint = read_checkpoint(path, expected_kind)
    cls = module_class(checkpoint["tsdfm"]["class_path"], path)
    upgrades = upgraded_hparams(cls, checkpoint.get("hyper_parameters") or {})
    # in an empty context: a module loaded while the CLI builds another (a teacher read in a student's __init__)
    # would otherwise record the outer module's hyper-parameters, which Lightning keeps in a context variable
    load = contextvars.Context().run
    return load(module_from_checkpoint, cls, checkpoint, map_location, **upgrades).eval()


def module_from_checkpoint(cls: type[L.LightningModule], checkpoint: dict, map_location="cpu",
                           **upgrades) -> L.LightningModule:
    """``cls`` built from a checkpoint dict already read, as Lightning's ``load_from_checkpoint`` builds it from the
    file: its saved hyper-parameters with ``upgrades`` over them, the names ``__init__`` does not take left out
    (unless it takes ``**kwargs``), passed to LightningCLI's instantiator when the checkpoint names it (checked by
    :func:`check_named_classes`) or else to ``cls``; then ``configure_model``, ``on_load_checkpoint`` and the
    weights (strict unless the module says otherwise), on ``map_location``."""
    saved = checkpoint.setdefault("hyper_parameters", {})
    saved.update(upgrades)
    hparams = dict(saved)
    instantiator = hparams.pop("_instantiator", None)
    takes = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in takes.values()):
        hparams = {name: value for name, value in hparams.items() if name in takes and name != "self"}
    module = instantiate_module(cls, hparams) if instantiator is not None else cls(**hparams)
    module.configure_model()
    module.on_load_checkpoint(checkpoint)
    keys = module.load_state_dict(checkpoint["state_dict"], strict=module.strict_loading)
    if not module.strict_loading and (keys.missing_keys or keys.unexpected_keys):
        rank_zero_warn(f"{cls.__name__} loaded without the weights {keys.missing_keys} and ignored the checkpoint's "
                       f"{keys.unexpected_keys}.")
    return module.to(map_location)


#: hyper-parameters that earlier versions saved under another name: old name -> current name
RENAMED_HPARAMS: dict[str, str] = {"initial_steps": "teacher_steps"}  # SDTT's teacher step count

#: hyper-parameter groups that earlier versions saved flat: group name -> the group's dict built from the flat
#: hyper-parameters, None when they hold none of its fields (:func:`read_flat_group`)
FLAT_GROUPS: dict[str, Callable[[dict], dict | None]] = {}


def read_flat_group(name: str, from_flat_hparams: Callable[[dict], dict | None]) -> None:
    """Read the hyper-parameter group ``name`` of a checkpoint that saved its fields flat by ``from_flat_hparams``
    (the optimizer's :class:`~lightning_tsdfm.modules.optim.OptimizerConfig` registers its own)."""
    FLAT_GROUPS[name] = from_flat_hparams


def upgraded_hparams(cls: type, hparams: dict) -> dict:
    """What a checkpoint of an earlier version holds under other names, as ``cls`` takes it now: flat fields as their
    group (:data:`FLAT_GROUPS`: ``lr``, ``weight_decay`` and ``warmup_steps`` as the ``optimizer`` group), a renamed
    hyper-parameter under its new name."""
    takes = inspect.signature(cls.__init__).parameters
    upgrades = {new: hparams[old] for old, new in RENAMED_HPARAMS.items()
                if old in hparams and new in takes and new not in hparams}
    for name, from_flat_hparams in FLAT_GROUPS.items():
        if name in takes and name not in hparams:
            group = from_flat_hparams(hparams)
            if group is not None:
                upgrades[name] = group
    return upgrades


def current_hparams(cls: type, hparams: dict) -> dict:
    """``hparams`` as ``cls`` takes them now: the :func:`upgraded_hparams` in, the names it no longer takes out
    (``_``-prefixed bookkeeping such as Lightning's ``_class_path`` is kept)."""
    takes = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in takes.values()):
        return hparams | upgraded_hparams(cls, hparams)
    kept = {name: value for name, value in hparams.items() if name in takes or name.startswith("_")}
    return kept | upgraded_hparams(cls, hparams)
