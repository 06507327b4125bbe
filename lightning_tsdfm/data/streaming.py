"""StreamingTextDataModule: a text corpus tokenized once into litdata chunks and streamed, for corpora that do not
fit one machine (its memory, its disk, or the time one process takes to tokenize them).

``prepare_data`` (global rank 0 only) runs :func:`~lightning_tsdfm.data.token_chunks.optimize_corpus` with
``optimize_workers`` processes; every rank then streams ``litdata.StreamingDataset`` through a
``StreamingDataLoader``: the chunks are split over all ranks of all nodes (each block goes to one rank per epoch),
shuffled by ``(seed, epoch)``, and the loader's state is saved in every checkpoint, so a run resumed with
``--ckpt_path`` continues mid-epoch with the blocks it had not seen.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from lightning_tsdfm.data.document_shards import read_shard, document_shards, source_signature
from lightning_tsdfm.data.tokenized import TokenizedDataModule
from lightning_tsdfm.data.token_chunks import (
    check_chunks,
    check_fingerprint,
    check_split,
    chunks_complete,
    optimize_corpus,
    require_litdata,
)
from lightning_tsdfm.data.tokenizer import TextTokenizer, resolve_tokenizer
from lightning_tsdfm.errors import UserError

__all__ = ["StreamingTextDataModule", "stack_blocks"]

#: Bump when the chunk layout or the split rule changes, so old chunks are not reused.
_CHUNKS_VERSION = 1


def stack_blocks(blocks: list[torch.Tensor]) -> torch.Tensor:
    """The collate function: ``[B, seq_len]`` int64 ids from stored (uint16 / int32) blocks."""
    return torch.stack(blocks).long()


class StreamingTextDataModule(TokenizedDataModule):
    """A text corpus in ``seq_len``-token blocks streamed from litdata chunks; batches are ``LongTensor[B, seq_len]``.

    Blocks are made as in :class:`~lightning_tsdfm.data.text.TextDataModule` (EOS after every document, blocks may
    span documents), but the validation documents are chosen by a hash of their text (about ``val_fraction`` of
    them), so the corpus is never counted or held whole. Shards of the corpus are read by separate processes
    (:mod:`~lightning_tsdfm.data.document_shards`): a ``hf:`` dataset by its data files, a directory by its files.

    Args:
        corpus: ``"web-bible"``, a ``.txt``/``.jsonl``/``.json`` file, a directory of ``.txt`` files, or
            ``"hf:<dataset>[:<config>]"`` (a hub name, or a local dataset folder of JSON Lines / Parquet files).
        tokenizer: ``"gpt2"``, ``"json:<path>"``, or ``"bpe"`` (trained on the whole corpus in memory: small corpora).
        bpe_vocab_size: vocabulary size of the trained BPE (``tokenizer="bpe"`` only).
        seq_len: tokens per block.
        batch_size: blocks per batch and rank.
        val_fraction: share of the documents held out for validation, in (0, 1).
        cache_dir: directory of the cached tokenizers and, without ``chunks_dir``, of the chunks.
        chunks_dir: where the chunks are written and read; every node must see it (a shared file system, or a
            cloud URL such as ``s3://bucket/owt``, which litdata reads through a local cache). Default: a folder
            under ``cache_dir`` named by the corpus, tokenizer, ``seq_len`` and ``val_fraction``.
        num_workers: DataLoader worker processes per rank.
        optimize_workers: processes that tokenize the corpus into chunks (default: one per CPU core).
        blocks_per_chunk: blocks per chunk file (2048 blocks of 1024 GPT-2 tokens: 4 MiB).
        seed: seed of the shuffling (chunks and blocks within them, new each epoch).
    """

    def __init__(
        self,
        corpus: str = "web-bible",
        tokenizer: str = "gpt2",
        bpe_vocab_size: int = 2048,
        seq_len: int = 1024,
        batch_size: int = 32,
        val_fraction: float = 0.01,
        cache_dir: str = ".cache/tsdfm",
        chunks_dir: Optional[str] = None,
        num_workers: int = 0,
        optimize_workers: Optional[int] = None,
        blocks_per_chunk: int = 2048,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if seq_len < 1 or batch_size < 1 or blocks_per_chunk < 1:
            raise UserError(f"seq_len, batch_size and blocks_per_chunk must be positive, got {seq_len}, {batch_size} "
                            f"and {blocks_per_chunk}.")
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}.")
        if num_workers < 0 or (optimize_workers is not None and optimize_workers < 1):
            raise UserError(f"num_workers must be >= 0 and optimize_workers >= 1, got {num_workers} and "
                            f"{optimize_workers}.")
        self.save_hyperparameters(logger=False)
        self.corpus, self.tokenizer_spec, self.bpe_vocab_size = corpus, tokenizer, bpe_vocab_size
        self.seq_len, self.batch_size, self.val_fraction = seq_len, batch_size, val_fraction
        self.cache_dir = Path(cache_dir).expanduser()
        self.num_workers, self.seed, self.blocks_per_chunk = num_workers, seed, blocks_per_chunk
        self.optimize_workers = optimize_workers
        self._chunks_dir = chunks_dir
        self._tokenizer: Optional[TextTokenizer] = None
        self.prepare_data_per_node = False  # one writer: the chunks directory is shared by every node

    # ---- tokenizer and chunks

    @property
    def tokenizer(self) -> TextTokenizer:
        if self._tokenizer is None:
            self._tokenizer, _ = resolve_tokenizer(
                self.tokenizer_spec, documents=self._all_documents, corpus_hash=lambda: self._signature_hash,
                bpe_vocab_size=self.bpe_vocab_size, cache_dir=self.cache_dir, log=rank_zero_info)
        return self._tokenizer

    def _all_documents(self) -> list[str]:
        return [doc for shard in document_shards(self.corpus, 1) for doc in read_shard(shard)]

    @property
    def _signature_hash(self) -> str:
        return hashlib.sha256(source_signature(self.corpus).encode()).hexdigest()

    @property
    def chunks_dir(self) -> str:
        """Where the chunks of this corpus, tokenizer, ``seq_len`` and ``val_fraction`` are (or will be)."""
        if self._chunks_dir:
            return self._chunks_dir
        key = (f"v{_CHUNKS_VERSION}|{self.corpus}|{self._signature_hash}|{self.tokenizer.fingerprint}|{self.seq_len}|"
               f"{self.val_fraction!r}")
        return str(self.cache_dir / "chunks" / hashlib.sha256(key.encode()).hexdigest()[:20])

    @property
    def fingerprint(self) -> dict:
        """What the chunks are made from: the corpus and its files, the tokenizer, ``seq_len`` and ``val_fraction``
        (written beside them, compared before they are reused:
        :func:`~lightning_tsdfm.data.token_chunks.check_fingerprint`)."""
        return {"version": _CHUNKS_VERSION, "corpus": self.corpus, "corpus_signature": self._signature_hash,
                "tokenizer": self.tokenizer_spec, "tokenizer_fingerprint": self.tokenizer.fingerprint,
                "seq_len": self.seq_len, "val_fraction": self.val_fraction}

    def prepare_data(self) -> None:
        """Tokenize the corpus into chunks unless a finished set of this corpus and tokenizer is there (global rank 0
        only); a finished set of other data is refused."""
        if "://" in self.chunks_dir:
            require_litdata()  # a cloud URL: optimize writes there; completeness is litdata's index
        elif chunks_complete(self.chunks_dir):
            check_fingerprint(self.chunks_dir, self.fingerprint)
            check_chunks(self.chunks_dir)
            rank_zero_info(f"tsdfm: reusing the chunks in {self.chunks_dir}")
            return
        meta = optimize_corpus(self.corpus, self.tokenizer, self.seq_len, self.val_fraction, self.chunks_dir,
                               self.optimize_workers or _cpu_count(), self.blocks_per_chunk,
                               describe={"corpus": self.corpus, "tokenizer": self.tokenizer_spec},
                               fingerprint=self.fingerprint)
        rank_zero_info(f"tsdfm: tokenized {self.corpus!r} into {meta['train']['blocks']} train / "
                       f"{meta['val']['blocks']} val blocks of {self.seq_len} in {self.chunks_dir}")

    def _dataset(self, split: str, shuffle: bool):
        """The split as a StreamingDataset; built when asked for (in ``*_dataloader``, after the process group is
        up), since litdata reads the ranks and world size when the dataset is made."""
        require_litdata()
        from litdata import StreamingDataset, TokensLoader

        path = f"{self.chunks_dir.rstrip('/')}/{split}"
        if "://" not in path:
            check_split(path, self.chunks_dir)
        return StreamingDataset(path, item_loader=TokensLoader(block_size=self.seq_len), shuffle=shuffle,
                                seed=self.seed, drop_last=True)

    def train_dataloader(self):
        from litdata import StreamingDataLoader

        return StreamingDataLoader(self._dataset("train", shuffle=True), batch_size=self.batch_size,
                                   num_workers=self.num_workers, collate_fn=stack_blocks, drop_last=True)

    def val_dataloader(self):
        from litdata import StreamingDataLoader

        return StreamingDataLoader(self._dataset("val", shuffle=False), batch_size=self.batch_size,
                                   num_workers=self.num_workers, collate_fn=stack_blocks)

    def heldout_tokens(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` distinct validation blocks, drawn with ``seed``, as ``LongTensor[n, seq_len]``."""
        val = self._dataset("val", shuffle=False)
        if not 0 < n <= len(val):
            raise UserError(f"Asked for n={n} held-out blocks, but the validation split has {len(val)}; ask for "
                            f"1..{len(val)}.")
        picked = np.sort(np.random.default_rng(seed).choice(len(val), size=n, replace=False))
        return stack_blocks([val[int(i)] for i in picked])


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
