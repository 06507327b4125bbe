"""The classes a checkpoint may name: only a registered module class (:func:`register_module_classes`, and the
LightningModules installed plugins export) is instantiated, and every class a checkpoint names (its header's
``class_path``; in its hyper-parameters, LightningCLI's ``_class_path`` and ``_instantiator`` and any nested
``class_path``) is checked against this allow-list before anything is imported (:func:`check_named_classes`), so a
checkpoint never runs code of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import lightning as L

from lightning_tsdfm.checkpoints.file import CHECKPOINT_GLOBALS
from lightning_tsdfm.plugins import load_plugins

#: the library's module classes a checkpoint may name (:func:`register_module_classes`)
REGISTERED: list[type[L.LightningModule]] = []


def register_module_classes(*classes: type[L.LightningModule]) -> None:
    """Allow checkpoints to name ``classes`` (the library registers its own modules when they are imported)."""
    REGISTERED.extend(c for c in classes if c not in REGISTERED)


def module_classes() -> dict[str, type[L.LightningModule]]:
    """class_path -> class of every module a checkpoint may name: the registered ones (the library's), and the
    LightningModules that installed plugins (entry-point group ``lightning_tsdfm.plugins``) export."""
    classes = list(REGISTERED)
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
