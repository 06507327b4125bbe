"""The size of each checkpoint a page counts cost in: the parameters of its network and the sequence length it samples.

Read from the checkpoint file the first time a page needs it (right after the rows are measured) and recorded in
``<results>/checkpoint_sizes.json``, so that the page regenerates from the results folder alone: run directories do not
survive from one machine to the next. A checkpoint retrained at the same path with another size needs its record
deleted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import results_io

FILE = "checkpoint_sizes.json"


def size(checkpoint: str, kind: str | tuple[str, ...]) -> dict:
    """``{"parameters": P, "seq_len": L}`` of ``checkpoint``'s network (its ``net``: no frozen teacher, no EMA copy)."""
    records = _read()
    if checkpoint in records:
        return records[checkpoint]
    if not Path(checkpoint).exists():
        raise FileNotFoundError(f"{checkpoint} is neither a file nor recorded in {results_io.RESULTS / FILE}: a page "
                                "that counts its cost reads it once.")
    from lightning_tsdfm.modules.checkpoint import load_module

    module = load_module(checkpoint, expected_kind=kind)
    measured = {"parameters": sum(p.numel() for p in module.net.parameters()), "seq_len": module.hparams.get("seq_len")}
    _write({**records, checkpoint: measured})
    return measured


def _read() -> dict:
    path = results_io.RESULTS / FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _write(records: dict) -> None:
    path = results_io.RESULTS / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
