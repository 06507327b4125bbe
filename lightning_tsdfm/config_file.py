"""A ``tsdfm fit`` config file as a dict, as the CLI reads it: a group given as a path (``data: data/synthetic.yaml``)
is the file it names, relative to the config that names it."""

from __future__ import annotations

from pathlib import Path

import yaml

#: the groups a config may give as the path of another file
PATH_VALUED_GROUPS = ("model", "data")


def read_config(path: str | Path) -> dict:
    """The config at ``path`` with its path-valued groups read in (a dict that stays valid written anywhere)."""
    path = Path(path)
    config = yaml.safe_load(path.read_text()) or {}
    for group in PATH_VALUED_GROUPS:
        if isinstance(config.get(group), str):
            config[group] = yaml.safe_load((path.parent / config[group]).read_text())
    return config
