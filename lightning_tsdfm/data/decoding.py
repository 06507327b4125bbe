"""Token ids back to text: the one decoder of the library, for a data card alone (no DataModule needed) and for a
DataModule's own ``decode``.

A text row is split into documents at the end-of-text token, each decoded and stripped, and the documents joined
by a blank line (a judge with another tokenizer would otherwise read the literal ``<|endoftext|>`` string); a
synthetic token is shown as the word ``t<id>``.
"""

from __future__ import annotations

from typing import Callable

import torch

from lightning_tsdfm.data.tokenizer import TextTokenizer, tokenizer_from_card

Decoder = Callable[[torch.Tensor], list[str]]  # token ids [B, L] -> B texts


def synthetic_text(ids: torch.Tensor) -> list[str]:
    """Synthetic tokens are shown as ``t<id>`` words."""
    return [" ".join(f"t{int(i)}" for i in row) for row in ids]


def text_decoder(tokenizer: TextTokenizer) -> Decoder:
    """The texts of rows of ``tokenizer``'s ids, one per row: its documents (split at EOS) joined by a blank line."""

    def decode(ids: torch.Tensor) -> list[str]:
        return [_decode_documents(tokenizer, row.tolist()) for row in ids]

    return decode


def decoder_from_card(card: dict) -> Decoder:
    """The decoder of the data a card describes: :func:`synthetic_text`, or :func:`text_decoder` of its tokenizer."""
    if card["kind"] == "synthetic":
        return synthetic_text
    if card["kind"] == "text":
        return text_decoder(tokenizer_from_card(card))
    raise ValueError(f"Unknown data card kind {card['kind']!r}.")


def _decode_documents(tokenizer: TextTokenizer, ids: list[int]) -> str:
    pieces, current = [], []
    for i in ids + [tokenizer.eos_id]:
        if i == tokenizer.eos_id:
            pieces.append(tokenizer.decode(current).strip())
            current = []
        else:
            current.append(i)
    return "\n\n".join(p for p in pieces if p)
