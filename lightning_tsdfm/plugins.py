"""Model-family plugins, discovered through the Python entry-point group ``lightning_tsdfm.plugins``.

A plugin is a distribution that declares, in its pyproject.toml,

    [project.entry-points."lightning_tsdfm.plugins"]
    mdlm = "tsdfm_mdlm"

and is installed next to the library (``pip install plugins/mdlm``). The library never imports a plugin by
name: :func:`load_plugins` imports what the entry points name, so their LightningModules are known to
``tsdfm fit --model ClassName`` and their checkpoints load with :func:`~lightning_tsdfm.modules.load_module`.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "lightning_tsdfm.plugins"

_loaded: dict[str, Any] = {}


def available_plugins() -> list[str]:
    """Names of the installed plugins (entry points of the group), without importing them."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_plugins() -> dict[str, Any]:
    """Import every installed plugin once; returns name -> the object its entry point names (usually a module).

    A plugin that fails to import is skipped with a warning that names it and the error, so one broken plugin
    does not stop the others or the library.
    """
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _loaded:
            continue
        try:
            _loaded[ep.name] = ep.load()
        except Exception as err:  # noqa: BLE001 - report any import failure of third-party code, keep going
            warnings.warn(f"lightning-tsdfm plugin {ep.name!r} ({ep.value}) failed to load and is skipped: "
                          f"{type(err).__name__}: {err}", stacklevel=2)
    return dict(_loaded)
