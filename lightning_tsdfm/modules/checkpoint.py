"""A lightning-tsdfm checkpoint: the file, read safely; its header, written by every module of the library and read
by every loader; and the module it holds, loaded as its own class with a clear error for the wrong kind.

The header, ``checkpoint["tsdfm"]``: ``kind`` (the module's ``checkpoint_kind``, words joined by ``_``),
``class_path`` (its class) and ``data_card`` (what it was trained on: :mod:`lightning_tsdfm.modules.data_card`).

Checkpoints are read with ``torch.load(weights_only=True)``: besides tensors and plain Python containers, only the
types in :data:`CHECKPOINT_GLOBALS` may be rebuilt, and only a registered module class (:func:`module_classes`) is
instantiated, so a checkpoint never runs code of its own. Every class a checkpoint names (its header's
``class_path``; in its hyper-parameters, LightningCLI's ``_class_path`` and ``_instantiator`` and any nested
``class_path``) is checked against the allow-list before anything is imported (:func:`check_named_classes`), and a
checkpoint given as a URL is refused (:func:`check_local_checkpoint`): a download would be unpickled unchecked.
"""

from __future__ import annotations

import contextvars
import inspect
import pickle
import re
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import lightning as L
import torch

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.models.backbone import TransformerConfig
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.plugins import load_plugins

#: the non-tensor, non-container types a lightning-tsdfm checkpoint holds (its backbone and optimizer configs in the
#: hyper-parameters).
#: Registered for the whole process (not in a context manager, whose exit would also drop them), so Lightning's own
#: weights-only loads (resuming with ``--ckpt_path``) accept them too.
CHECKPOINT_GLOBALS = [TransformerConfig, OptimizerConfig]
torch.serialization.add_safe_globals(CHECKPOINT_GLOBALS)


def unreadable_checkpoint(path, reason: str) -> UserError:
    """The error for a checkpoint file that cannot be read at all (empty, truncated, not a checkpoint)."""
    return UserError(
        f"{path} is not a readable checkpoint ({reason}): the file is truncated or corrupt, e.g. an interrupted copy "
        f"or save. Copy it again, or use another checkpoint (an earlier one in the same directory)."
    )


def is_remote(path) -> bool:
    """Whether ``path`` names a checkpoint elsewhere than in a local file: a URL (``https://``, ``s3://``,
    ``file://``, ...), an fsspec chain (``simplecache::...``) or Lightning's model registry (``registry:...``)."""
    text = str(path)
    return "://" in text or "::" in text or text.lower() == "registry" or text.lower().startswith("registry:")


def check_local_checkpoint(path) -> None:
    """Refuse a remote checkpoint (:func:`is_remote`): Lightning and torch.hub would download and unpickle it
    unchecked, so only a local file, read by :func:`read_checkpoint`, is loaded."""
    if is_remote(path):
        raise UserError(
            f"Refusing to load the checkpoint {path}: remote checkpoints (URLs such as https://, s3://, file://, or "
            f"registry:) are not loaded, as reading one unchecked could run code it holds. Download the file and pass "
            f"its local path, which is read safely (weights only, registered module classes)."
        )


def check_checkpoint_file(path: str | Path) -> None:
    """Refuse a file that cannot be a checkpoint: a remote one, a missing one, and, as ``torch.save`` writes a zip
    archive whole only with its directory at the end, an empty, truncated or random one, before torch reads it; and
    a damaged one (a flipped bit, a bad sector): every member of the archive must match the CRC-32 checksum it was
    written with (torch itself does not check them, and would load the damaged weights)."""
    check_local_checkpoint(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    if path.stat().st_size == 0:
        raise unreadable_checkpoint(path, "it is empty")
    if not zipfile.is_zipfile(path):
        raise unreadable_checkpoint(path, "it is not a whole zip archive, as torch.save writes")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = next(filter(None, (_damage(archive, member) for member in archive.infolist())), None)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError) as err:
        raise unreadable_checkpoint(path, f"its zip archive is damaged: {err}") from err
    if damaged:
        raise unreadable_checkpoint(path, damaged)


def _damage(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> str | None:
    """What is wrong with ``member``, read whole and checked against its CRC-32 checksum, or None. A checksum of 0
    (written without checksums, ``torch.utils.serialization.config.save.compute_crc32 = False``, or empty) is not
    checked."""
    if member.CRC == 0:
        return None
    try:
        with archive.open(member) as f:
            while f.read(1 << 24):
                pass
    except zipfile.BadZipFile as err:
        return f"its member {member.filename} " + ("does not match its CRC-32 checksum" if "CRC" in str(err) else
                                                   f"is damaged: {err}")
    return None


def _safe_load(path: Path):
    """``torch.load`` that rebuilds tensors, plain Python values and :data:`CHECKPOINT_GLOBALS` only."""
    check_checkpoint_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise unreadable_checkpoint(path, f"torch could not read it: {str(err).splitlines()[0][:120]}") from err
    except pickle.UnpicklingError as err:
        allowed = ", ".join(f"{g.__module__}.{g.__qualname__}" for g in CHECKPOINT_GLOBALS)
        raise ValueError(
            f"Refused to load {path}: it holds objects of classes outside the checkpoint allow-list "
            f"({_refused_objects(path, err)}), which lightning-tsdfm does not rebuild: it never unpickles arbitrary "
            f"code. A checkpoint may hold only tensors, plain Python values (numbers, strings, lists, dicts) and "
            f"{allowed}. A module that keeps a config object or a tokenizer as hyper-parameters (MDLM's Diffusion "
            f"keeps its OmegaConf config and its tokenizer) must save them as plain values: in its "
            f"on_save_checkpoint, set checkpoint['hyper_parameters'] to what its __init__ accepts in their place (the "
            f"config as OmegaConf.to_container(config, resolve=True), the tokenizer by its name), then save again."
        ) from None


#: types a pickle names only as values of a config's type records (an OmegaConf config records each entry's type):
#: harmless, and refused only with the object that records them, so a refusal does not list them
TYPE_RECORDS = frozenset({*(f"builtins.{t.__name__}" for t in (bool, bytearray, bytes, complex, dict, float, frozenset,
                                                               int, list, object, set, str, tuple, type)),
                          "builtins.NoneType", "typing.Any"})


def _refused_objects(path: Path, err: Exception) -> str:
    """The globals of ``path`` outside the allow-list, plain types that a config records left out
    (:data:`TYPE_RECORDS`), or torch's reason when it cannot list them."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - not a zip checkpoint: fall back on torch's message
        names = []
    if names:
        return ", ".join(sorted(set(names) - TYPE_RECORDS) or sorted(names))
    found = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\. Please use|\n\n|$)", str(err), re.S)
    return found.group(1).strip() if found else "objects torch could not name"


def write_header(checkpoint: dict, module) -> None:
    """Write ``module``'s header into the checkpoint dict Lightning is saving."""
    checkpoint["tsdfm"] = {
        "kind": module.checkpoint_kind,
        "class_path": f"{type(module).__module__}.{type(module).__qualname__}",
        "data_card": getattr(module, "data_card", None),
    }


def canonical_kind(kind):
    """A checkpoint kind in its one spelling, words joined by ``_`` (earlier versions wrote ``mdlm-sdtt``)."""
    return kind.replace("-", "_") if isinstance(kind, str) else kind


def header_of(checkpoint, where) -> dict:
    """The header of a loaded checkpoint dict, its kind in the one spelling; one without a header was not written by
    `tsdfm fit` and is refused."""
    header = checkpoint.get("tsdfm") if isinstance(checkpoint, dict) else None
    if not isinstance(header, dict):
        raise UserError(f"{where} is not a lightning-tsdfm checkpoint (no 'tsdfm' header): use a checkpoint "
                        f"written by `tsdfm fit`.")
    header["kind"] = canonical_kind(header.get("kind"))
    return header


def check_resumed_kind(header: dict, module_class: type, where) -> None:
    """A run resumed from a checkpoint (``--ckpt_path``) must train a module of the checkpoint's kind."""
    kind = canonical_kind(module_class.checkpoint_kind)
    if canonical_kind(header.get("kind")) != kind:
        raise UserError(
            f"{where} is a {header.get('kind')!r} checkpoint, but this run trains a {module_class.__name__} "
            f"({kind!r}): resume from a {kind!r} checkpoint of the same config (a teacher is given as "
            f"--model.init_args.teacher_checkpoint, not --ckpt_path)."
        )


def checkpoint_name(module) -> str:
    """The checkpoint a module is being restored from, as far as it knows."""
    trainer = getattr(module, "_trainer", None)
    path = getattr(trainer, "ckpt_path", None) if trainer is not None else None
    return str(path) if path else "The checkpoint"


def read_checkpoint(path: str | Path, expected_kind: str | tuple[str, ...] | None = None) -> dict:
    """The whole checkpoint dict, read safely, after checking it is a local lightning-tsdfm checkpoint of an expected
    kind that names registered classes only (:func:`check_named_classes`)."""
    check_local_checkpoint(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    checkpoint = _safe_load(path)
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


def module_classes() -> dict[str, type[L.LightningModule]]:
    """class_path -> class of every module a checkpoint may name: the library's, and the LightningModules that
    installed plugins (entry-point group ``lightning_tsdfm.plugins``) export."""
    from lightning_tsdfm.modules import CausalLMModule, CompassModule, StudentModule, TeacherModule  # import cycle

    classes = [CausalLMModule, CompassModule, StudentModule, TeacherModule]
    for plugin in load_plugins().values():
        members = vars(plugin).values() if isinstance(plugin, ModuleType) else [plugin]
        classes += [c for c in members if isinstance(c, type) and issubclass(c, L.LightningModule)]
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


def module_class(class_path, path: str | Path = "the checkpoint", where: str = "") -> type[L.LightningModule]:
    """The registered module class named ``class_path`` (:func:`registered_class`); anything else is refused without
    importing it. ``where`` says where the checkpoint names it (its header when empty)."""
    classes = module_classes()
    cls = registered_class(class_path, classes)
    if cls is None:
        raise ValueError(
            f"{path} names the module class {class_path!r}{f' in {where}' if where else ''}, which is not a registered "
            f"lightning-tsdfm module: allowed are {', '.join(sorted(classes))}. A plugin's classes are allowed once it "
            f"is installed (e.g. `pip install plugins/<name>`)."
        )
    return cls


def registered_class(name, classes: dict[str, type]) -> type | None:
    """The class of ``classes`` (class path -> class) that ``name`` names, by its own path or by the path of an
    imported module that holds it (``lightning_tsdfm.TeacherModule``, as LightningCLI records it), else None.
    Only modules already imported are looked at, so nothing is imported."""
    if not isinstance(name, str):
        return None
    if name in classes:
        return classes[name]
    module_name, _, attribute = name.rpartition(".")
    found = getattr(sys.modules.get(module_name), "__dict__", {}).get(attribute)
    return found if any(found is cls for cls in classes.values()) else None


#: the instantiators LightningCLI records as a module's ``_instantiator`` hyper-parameter (Lightning's own allow-list)
INSTANTIATORS = ("lightning.pytorch.cli.instantiate_module", "pytorch_lightning.cli.instantiate_module")

#: the hyper-parameter keys whose value names a class or function that Lightning or jsonargparse would import
NAMING_KEYS = ("class_path", "_class_path", "_instantiator")


def check_named_classes(checkpoint: dict, path) -> None:
    """Refuse a checkpoint that names a class outside the allow-list anywhere Lightning or jsonargparse would import
    it from, before anything is imported: the header's ``class_path`` and the hyper-parameters' ``_class_path`` name
    one registered module (:func:`module_class`), an ``_instantiator`` is LightningCLI's (:data:`INSTANTIATORS`), a
    nested ``class_path`` a registered module or a :data:`CHECKPOINT_GLOBALS` config."""
    cls = module_class(checkpoint["tsdfm"].get("class_path"), path)
    hparams = checkpoint.get("hyper_parameters")
    for where, key, name in _named(hparams if isinstance(hparams, dict) else {}, "hyper_parameters", path):
        if key == "_instantiator":
            if name not in INSTANTIATORS:
                raise ValueError(
                    f"{path} names the instantiator {name!r} in {where}, which is not LightningCLI's "
                    f"({', '.join(INSTANTIATORS)}): refused without importing it. Use a checkpoint written by "
                    f"`tsdfm fit`.")
        elif where == f"hyper_parameters.{key}":
            if module_class(name, path, where) is not cls:
                raise ValueError(
                    f"{path} names the module class {name!r} in {where} but {checkpoint['tsdfm'].get('class_path')!r} "
                    f"in its header: refused, as the two disagree. Use a checkpoint written by `tsdfm fit`.")
        elif registered_class(name, _nested_classes()) is None:
            raise ValueError(
                f"{path} names the class {name!r} in {where}, which is not allowed in a checkpoint's "
                f"hyper-parameters (allowed: {', '.join(sorted(_nested_classes()))}): refused without importing it. "
                f"Use a checkpoint written by `tsdfm fit`.")


def _nested_classes() -> dict[str, type]:
    """class_path -> class of what a hyper-parameter may name: a registered module or a checkpoint config."""
    return module_classes() | {f"{c.__module__}.{c.__qualname__}": c for c in CHECKPOINT_GLOBALS}


#: the deepest nesting of hyper-parameters a checkpoint may hold (a written one holds a few levels)
MAX_HPARAMS_DEPTH = 64


def _named(value, where: str, path, depth: int = 0):
    """(where, key, name) for every :data:`NAMING_KEYS` entry in ``value`` (of the checkpoint ``path``), at any depth
    up to :data:`MAX_HPARAMS_DEPTH` (``where`` is its place, e.g. ``hyper_parameters.backbone.class_path``)."""
    if depth > MAX_HPARAMS_DEPTH:
        raise ValueError(f"{path} holds hyper-parameters nested deeper than {MAX_HPARAMS_DEPTH} levels, which no "
                         f"checkpoint written by `tsdfm fit` holds: refused. Use a checkpoint written by `tsdfm fit`.")
    if isinstance(value, dict):
        for key, item in value.items():
            place = f"{where}.{key}"
            if key in NAMING_KEYS:
                yield place, key, item
            yield from _named(item, place, path, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _named(item, f"{where}[{index}]", path, depth + 1)


def load_module(path: str | Path, expected_kind: str | tuple[str, ...] | None = None, map_location="cpu") -> L.LightningModule:
    """Instantiate the checkpoint's (registered) module class and load its weights (and data card), safely."""
    checkpoint = read_checkpoint(path, expected_kind)
    cls = module_class(checkpoint["tsdfm"]["class_path"], path)
    upgrades = upgraded_hparams(cls, checkpoint.get("hyper_parameters") or {})
    # in an empty context: a module loaded while the CLI builds another (a teacher read in a student's __init__)
    # would otherwise record the outer module's hyper-parameters, which Lightning keeps in a context variable
    load = contextvars.Context().run
    return load(cls.load_from_checkpoint, str(path), map_location=map_location, weights_only=True, **upgrades).eval()


#: hyper-parameters that earlier versions saved under another name: old name -> current name
RENAMED_HPARAMS: dict[str, str] = {"initial_steps": "teacher_steps"}  # SDTT's teacher step count


def upgraded_hparams(cls: type, hparams: dict) -> dict:
    """What a checkpoint of an earlier version holds under other names, as ``cls`` takes it now: its flat ``lr``,
    ``weight_decay`` and ``warmup_steps`` as the ``optimizer`` group, a renamed hyper-parameter under its new name."""
    takes = inspect.signature(cls.__init__).parameters
    upgrades = {new: hparams[old] for old, new in RENAMED_HPARAMS.items()
                if old in hparams and new in takes and new not in hparams}
    if "optimizer" in takes and "optimizer" not in hparams:
        group = OptimizerConfig.from_flat_hparams(hparams)
        if group is not None:
            upgrades["optimizer"] = group
    return upgrades


def current_hparams(cls: type, hparams: dict) -> dict:
    """``hparams`` as ``cls`` takes them now: the :func:`upgraded_hparams` in, the names it no longer takes out
    (``_``-prefixed bookkeeping such as Lightning's ``_class_path`` is kept)."""
    takes = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in takes.values()):
        return hparams | upgraded_hparams(cls, hparams)
    kept = {name: value for name, value in hparams.items() if name in takes or name.startswith("_")}
    return kept | upgraded_hparams(cls, hparams)
