"""A corpus as shards of documents that separate processes read on their own, so a corpus larger than memory is
tokenized in parallel without ever being held whole.

* ``"hf:<dataset>[:<config>]"``: the ``train`` split opened with ``streaming=True``; one shard per group of its
  data files (``IterableDataset.shard``). A local dataset folder (``hf:/data/my_corpus``, JSON Lines or Parquet
  files with a ``text`` column) works offline.
* a directory of ``.txt`` files: one document per file, every ``count``-th file to a shard.
* ``"web-bible"``, a ``.txt``, ``.jsonl`` or ``.json`` file: read whole by :func:`load_corpus` (they fit memory),
  every ``count``-th document to a shard, which carries its documents (worker processes do not read them again).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from lightning_tsdfm.data.corpora import hf_name_and_config, load_corpus, read_utf8
from lightning_tsdfm.errors import UserError

__all__ = ["DocumentShard", "document_shards", "in_validation", "read_shard", "source_signature"]


@dataclass(frozen=True)
class DocumentShard:
    """Shard ``index`` of ``count`` of ``corpus`` (picklable: worker processes receive it), with its ``documents``
    when the corpus was read whole."""

    corpus: str
    index: int
    count: int
    documents: tuple[str, ...] | None = field(default=None, repr=False)


def document_shards(corpus: str, max_shards: int) -> list[DocumentShard]:
    """At most ``max_shards`` shards that together hold every document of ``corpus`` once."""
    if max_shards < 1:
        raise UserError(f"max_shards must be at least 1, got {max_shards}.")
    documents = None
    if corpus.startswith("hf:"):
        available = _hf_stream(corpus).n_shards
    elif _is_directory(corpus):
        available = len(_text_files(corpus))
    else:
        documents = load_corpus(corpus)
        available = len(documents)
    if available < 1:
        raise UserError(f"Corpus {corpus!r} holds no document; point `corpus` at a non-empty source.")
    count = min(available, max_shards)
    return [DocumentShard(corpus, i, count, None if documents is None else tuple(documents[i::count]))
            for i in range(count)]


def read_shard(shard: DocumentShard) -> Iterator[str]:
    """The documents of ``shard`` (stripped, non-empty), in a fixed order."""
    if shard.corpus.startswith("hf:"):
        for record in _hf_stream(shard.corpus).shard(num_shards=shard.count, index=shard.index):
            text = record.get("text")
            if isinstance(text, str) and text.strip():
                yield text.strip()
        return
    if shard.documents is not None:
        texts = iter(shard.documents)
    elif _is_directory(shard.corpus):
        texts = (read_utf8(path) for path in _text_files(shard.corpus)[shard.index::shard.count])
    else:
        texts = iter(load_corpus(shard.corpus)[shard.index::shard.count])
    for text in texts:
        if text.strip():
            yield text.strip()


def in_validation(document: str, val_fraction: float) -> bool:
    """Whether ``document`` belongs to the validation split: the first 8 bytes of its SHA-256, read as a fraction of
    2^64, fall below ``val_fraction``. The rule needs no count of the corpus and no order, so every shard decides
    alone, and equal documents land in the same split."""
    digest = hashlib.sha256(document.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < val_fraction * 2**64


def source_signature(corpus: str) -> str:
    """What identifies the content of ``corpus`` without reading it: the name and size of every local file (a
    changed file makes another signature); the name itself for ``web-bible`` and ``hf:`` corpora."""
    if corpus.startswith("hf:") or not Path(corpus).expanduser().exists():
        return corpus
    path = Path(corpus).expanduser()
    files = _text_files(corpus) if path.is_dir() else [path]
    return "|".join(f"{p.relative_to(path) if path.is_dir() else p.name}:{os.stat(p).st_size}:{os.stat(p).st_mtime_ns}"
                    for p in files)


def _is_directory(corpus: str) -> bool:
    return not corpus.startswith("hf:") and Path(corpus).expanduser().is_dir()


def _text_files(corpus: str) -> list[Path]:
    return [p for p in sorted(Path(corpus).expanduser().rglob("*.txt")) if p.is_file()]


def _hf_stream(corpus: str):
    name, config = hf_name_and_config(corpus)
    try:
        import datasets
    except ImportError as err:
        raise ModuleNotFoundError(f"Corpus {corpus!r} needs the `datasets` package: pip install datasets") from err
    stream = datasets.load_dataset(name, config, split="train", streaming=True)
    if stream.column_names is not None and "text" not in stream.column_names:
        raise UserError(f"Corpus {corpus!r} has no 'text' column (columns: {stream.column_names}); pick a dataset "
                        f"with a text column.")
    return stream
