"""What every text data module derives from its tokenizer: vocabulary size, EOS id, decoding and the data card."""

from __future__ import annotations

import lightning as L
import torch

from lightning_tsdfm.data.decoding import text_decoder
from lightning_tsdfm.data.tokenizer import TextTokenizer


class TokenizedDataModule(L.LightningDataModule):
    """A data module whose token ids come from a :class:`TextTokenizer` (subclasses provide ``tokenizer``,
    ``corpus``, ``tokenizer_spec`` and ``seq_len``)."""

    tokenizer: TextTokenizer
    corpus: str
    tokenizer_spec: str
    seq_len: int

    @property
    def vocab_size(self) -> int:
        """Number of token ids (the denoiser's output size)."""
        return self.tokenizer.vocab_size

    @property
    def eos_id(self) -> int:
        """Id of the end-of-document token appended after every document."""
        return self.tokenizer.eos_id

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Texts of a ``[B, L]`` (or ``[L]``) batch of ids, as a checkpoint's data card decodes them
        (:func:`~lightning_tsdfm.data.decoding.text_decoder`: documents split at EOS, joined by a blank line).

        Raises:
            ValueError: an id lies outside ``[0, vocab_size)`` (a mask id, say): replace such ids before decoding.
        """
        ids = torch.as_tensor(ids)
        if ids.dim() == 1:
            ids = ids.unsqueeze(0)
        if ids.dim() != 2:
            raise ValueError(f"decode expects ids of shape [B, L] or [L], got {tuple(ids.shape)}.")
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"decode expects integer ids, got dtype {ids.dtype}.")
        vocab_size = self.tokenizer.vocab_size
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
            bad = ids[(ids < 0) | (ids >= vocab_size)].unique()[:5].tolist()
            raise ValueError(
                f"Cannot decode ids {bad}: valid ids are 0..{vocab_size - 1}. A mask id (= vocab_size) or another "
                f"non-token id is still in the sample; replace or strip it before decoding."
            )
        return text_decoder(self.tokenizer)(ids.cpu())

    def data_card(self) -> dict:
        """Everything needed to decode and judge samples without this module (see ``decoder_from_card``)."""
        tok = self.tokenizer
        return {"kind": "text", "corpus": self.corpus, "tokenizer": self.tokenizer_spec,
                "tokenizer_json": tok.to_json(), "tokenizer_fingerprint": tok.fingerprint,
                "vocab_size": tok.vocab_size, "eos_id": tok.eos_id, "seq_len": self.seq_len}
