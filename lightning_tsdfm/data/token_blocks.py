"""Token blocks on disk: documents tokenized once, packed into ``[n_blocks, seq_len]`` ``.npy`` arrays, and read
back lazily as a map-style dataset."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_tsdfm.data.tokenizer import TextTokenizer

__all__ = ["TokenBlocks", "cache_problem", "pack_to_npy"]


def pack_to_npy(
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


def cache_problem(folder: Path) -> str | None:
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


class TokenBlocks(Dataset):
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
