"""A corpus tokenized into litdata chunks (``litdata.optimize``): the form in which a corpus larger than one
machine is streamed by every rank of every node.

``<output_dir>/train`` and ``<output_dir>/val`` each hold binary chunks of ``seq_len``-token blocks and litdata's
``index.json``; ``<output_dir>/fingerprint.json``, written first, names what they were made from (corpus, tokenizer,
``seq_len``, ``val_fraction``: :func:`check_fingerprint` refuses to reuse them for another);
``<output_dir>/meta.json``, written last, marks the whole as complete and counts the blocks. Within
each shard of documents (:mod:`lightning_tsdfm.data.document_shards`), documents are followed by the EOS token,
concatenated and cut into blocks (a block may span documents; each shard drops its last partial block). A chunk
holds a whole number of blocks, so no block is lost at a chunk boundary.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from lightning_tsdfm.atomic_file import atomic_write_text
from lightning_tsdfm.data.document_shards import DocumentShard, document_shards, in_validation, read_shard
from lightning_tsdfm.data.tokenizer import TextTokenizer
from lightning_tsdfm.errors import UserError

__all__ = ["FINGERPRINT", "SPLITS", "check_chunks", "check_fingerprint", "check_split", "chunks_complete",
           "optimize_corpus", "require_litdata"]

SPLITS = ("train", "val")
FINGERPRINT = "fingerprint.json"
#: the fingerprint entries two sets of chunks must share to hold the same blocks (the others are shown)
_SAME_BLOCKS = ("version", "corpus_signature", "tokenizer_fingerprint", "seq_len", "val_fraction")
LITDATA_INSTALL = "pip install litdata (or pip install 'lightning-tsdfm[stream]')"
#: documents tokenized per call of the tokenizer
_DOCUMENTS_PER_BATCH = 256


def require_litdata():
    """The ``litdata`` package, or an error that says how to install it."""
    try:
        import litdata
    except ImportError as err:
        raise ModuleNotFoundError(f"Streaming corpora need the `litdata` package: {LITDATA_INSTALL}.") from err
    return litdata


class ShardBlocks:
    """``litdata.optimize``'s function: the ``seq_len``-token blocks of one split of a shard (picklable; each
    worker process rebuilds the tokenizer from its JSON)."""

    def __init__(self, tokenizer_json: str, eos_token: str, seq_len: int, val_fraction: float, split: str) -> None:
        self.tokenizer_json, self.eos_token = tokenizer_json, eos_token
        self.seq_len, self.val_fraction, self.split = seq_len, val_fraction, split

    def __call__(self, shard: DocumentShard) -> Iterator[torch.Tensor]:
        tok = TextTokenizer.from_json(self.tokenizer_json, self.eos_token)
        dtype = torch.uint16 if tok.vocab_size <= 2**16 else torch.int32
        pending = np.zeros(0, dtype=np.int64)
        for documents in self._batches(shard):
            rows = [np.asarray(row + [tok.eos_id], dtype=np.int64) for row in tok.encode_batch(documents)]
            pending = np.concatenate([pending, *rows])
            whole = len(pending) // self.seq_len * self.seq_len
            for block in pending[:whole].reshape(-1, self.seq_len):
                yield torch.from_numpy(block).to(dtype)
            pending = pending[whole:]

    def _batches(self, shard: DocumentShard) -> Iterator[list[str]]:
        want_val = self.split == "val"
        batch: list[str] = []
        for document in read_shard(shard):
            if in_validation(document, self.val_fraction) == want_val:
                batch.append(document)
                if len(batch) == _DOCUMENTS_PER_BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch


@contextlib.contextmanager
def forked_workers() -> Iterator[str | None]:
    """The start method for ``optimize``'s workers: ``fork`` where there is one (a worker starts at once, without
    importing the caller's main module again, which ``spawn`` needs and a script without a main guard lacks). litdata
    sets it for the whole process; the caller's start method is restored afterwards."""
    previous = multiprocessing.get_start_method(allow_none=True)
    try:
        yield "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    finally:
        multiprocessing.set_start_method(previous, force=True)


def chunks_complete(output_dir: str | os.PathLike) -> bool:
    """Whether ``output_dir`` holds a finished :func:`optimize_corpus` (its ``meta.json``)."""
    return (Path(output_dir) / "meta.json").is_file()


def check_chunks(output_dir: str | os.PathLike) -> None:
    """Refuse finished chunks that are not whole: each split's ``index.json``, and every chunk it lists at the size
    it lists (:func:`check_split`)."""
    for split in SPLITS:
        check_split(Path(output_dir) / split, output_dir)


def check_split(split_dir: str | os.PathLike, output_dir: str | os.PathLike) -> None:
    """Refuse the chunks of one split unless its ``index.json`` is there and every chunk it lists has the size it
    lists: litdata would wait for a missing or truncated chunk, then time out with an error about downloads."""
    split_dir = Path(split_dir)
    index = split_dir / "index.json"
    fix = (f"Delete {output_dir} (prepare_data, which the Trainer runs, writes the chunks again), or set chunks_dir "
           f"to another directory.")
    if not index.is_file():
        if not (Path(output_dir) / "meta.json").is_file():
            raise UserError(f"No chunks in {split_dir}: prepare_data (which the Trainer runs, on global rank 0) writes "
                            f"them; a run on several nodes needs a chunks_dir that every node sees (a shared file "
                            f"system or a cloud URL).")
        raise UserError(f"{index} is missing: the chunks in {output_dir} are incomplete (an interrupted copy?). {fix}")
    try:
        chunks = json.loads(index.read_text())["chunks"]
        expected = {chunk["filename"]: int(chunk["chunk_bytes"]) for chunk in chunks}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{index} is not a readable litdata index ({type(err).__name__}: {err}). {fix}") from None
    for name, size in expected.items():
        path = split_dir / name
        found = path.stat().st_size if path.is_file() else None
        if found != size:
            state = "is missing" if found is None else f"holds {found} bytes where its index.json lists {size}"
            raise UserError(f"The chunk {path} {state}: the chunks in {output_dir} are damaged (a truncated or "
                            f"interrupted copy?). {fix}")


def check_fingerprint(output_dir: str | os.PathLike, fingerprint: dict) -> None:
    """Refuse the finished chunks in ``output_dir`` unless they were made from what ``fingerprint`` names (the same
    corpus files, tokenizer, ``seq_len`` and ``val_fraction``). Chunks of an earlier version, without a fingerprint,
    are judged by their ``meta.json`` (corpus and tokenizer names, ``seq_len``, ``val_fraction``) and, when those
    agree, given this fingerprint."""
    output_dir = Path(output_dir)
    try:
        made = json.loads((output_dir / FINGERPRINT).read_text())
        differs = [key for key in _SAME_BLOCKS if made.get(key) != fingerprint.get(key)]
    except FileNotFoundError:
        made = json.loads((output_dir / "meta.json").read_text())
        differs = [key for key in ("corpus", "tokenizer", "seq_len", "val_fraction")
                   if key in made and made[key] != fingerprint.get(key)]
        if not differs:
            atomic_write_text(output_dir / FINGERPRINT, json.dumps(fingerprint, indent=1))
    except (OSError, ValueError) as err:
        raise UserError(f"The chunks in {output_dir} have an unreadable {FINGERPRINT} ({err}): delete {output_dir} "
                        f"(this run writes them again), or set chunks_dir to another directory.") from None
    if differs:
        what = "; ".join(_difference(key, made, fingerprint) for key in differs)
        raise UserError(
            f"The chunks in {output_dir} were made from other data than this run's ({what}): reusing them would train "
            f"on other tokens than data.corpus names. Delete {output_dir} (this run writes them again), or set "
            f"chunks_dir to another directory (unset, each corpus gets its own under cache_dir).")


def _difference(key: str, made: dict, fingerprint: dict) -> str:
    if key == "corpus_signature":
        return f"the corpus files: {made.get('corpus')!r} as it was then -> {fingerprint.get('corpus')!r} now"
    if key == "tokenizer_fingerprint":
        return f"the tokenizer: {made.get('tokenizer')!r} -> {fingerprint.get('tokenizer')!r} (another vocabulary)"
    return f"{key}: {made.get(key)!r} -> {fingerprint.get(key)!r}"


def optimize_corpus(corpus: str, tok: TextTokenizer, seq_len: int, val_fraction: float, output_dir: str | os.PathLike,
                    num_workers: int, blocks_per_chunk: int = 2048, describe: dict | None = None,
                    fingerprint: dict | None = None) -> dict:
    """Tokenize ``corpus`` into litdata chunks under ``output_dir`` (see the module docstring) with ``num_workers``
    processes; returns the ``meta.json`` written last (``describe`` is added to it). ``fingerprint`` (what
    :func:`check_fingerprint` compares) is written first, to a local ``output_dir``."""
    litdata = require_litdata()
    from litdata import TokensLoader

    local = "://" not in str(output_dir)
    output_dir = Path(output_dir)
    (output_dir / "meta.json").unlink(missing_ok=True)  # first: an interrupted run never looks complete
    if fingerprint is not None and local:
        atomic_write_text(output_dir / FINGERPRINT, json.dumps(fingerprint, indent=1))
    shards = document_shards(corpus, max_shards=max(1, num_workers) * 4)
    counts = {}
    for split in SPLITS:
        with forked_workers() as start_method:
            litdata.optimize(fn=ShardBlocks(tok.to_json(), tok.eos_token, seq_len, val_fraction, split), inputs=shards,
                             output_dir=str(output_dir / split), chunk_size=seq_len * blocks_per_chunk,
                             item_loader=TokensLoader(), num_workers=max(1, num_workers), mode="overwrite",
                             start_method=start_method)
        counts[split] = {"blocks": _blocks_written(output_dir / split, seq_len)}
        if counts[split]["blocks"] < 1:
            raise UserError(f"Corpus {corpus!r} is too small: its {split} split has no block of seq_len={seq_len} "
                            f"tokens. Use a larger corpus, a smaller seq_len, or another val_fraction (now "
                            f"{val_fraction}).")
    meta = {**(describe or {}), "seq_len": seq_len, "val_fraction": val_fraction, "shards": len(shards), **counts}
    atomic_write_text(output_dir / "meta.json", json.dumps(meta, indent=1))
    return meta


def _blocks_written(split_dir: Path, seq_len: int) -> int:
    index = split_dir / "index.json"
    if not index.is_file():
        return 0
    return sum(chunk["dim"] for chunk in json.loads(index.read_text())["chunks"]) // seq_len
