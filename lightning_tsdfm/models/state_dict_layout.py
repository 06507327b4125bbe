"""Renaming another codebase's state dict into the backbone's names with a table of (their name, our name) pairs,
where ``{i}`` stands for a block index."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=None)
def _pattern(name: str) -> re.Pattern:
    return re.compile("^" + re.escape(name).replace(r"\{i\}", r"(?P<i>\d+)") + "$")


def rename(name: str, table: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str | None:
    """The other side's name for ``name`` under ``table`` (pairs (from, to), ``{i}`` a block index), or None."""
    for source, target in table:
        match = _pattern(source).match(name)
        if match:
            return target.replace("{i}", match.groupdict().get("i") or "")
    return None
