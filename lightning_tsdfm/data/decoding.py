"""Turn token ids back into text from a data card alone (no DataModule needed).

This is the text that judges score: an end-of-text token between documents is shown as a blank line
(a judge with another tokenizer would otherwise read the literal ``<|endoftext|>`` string).
"""

from __future__ import annotations

from typing import Callable

import torch

from lightning_tsdfm.data.text import tokenizer_from_card


def synthetic_text(ids: torch.Tensor) -> list[str]:
    """Synthetic tokens are shown as ``t<id>`` words."""
    return [" ".join(f"t{int(i)}" for i in row) for row in ids]


def decoder_from_card(card: dict) -> Callable[[torch.Tensor], list[str]]:
    if card["kind"] == "synthetic":
        return synthetic_text
    if card["kind"] == "text":
        tokenizer = tokenizer_from_card(card)

        def decode(ids: torch.Tensor) -> list[str]:
            return [_decode_documents(tokenizer, row.tolist()) for row in ids]

        return decode
    raise ValueError(f"Unknown data card kind {card['kind']!r}.")


def _decode_documents(tokenizer, ids: list[int]) -> str:
    pieces, current = [], []
    for i in ids + [tokenizer.eos_id]:
        if i == tokenizer.eos_id:
            pieces.append(tokenizer.decode(current).strip())
            current = []
        else:
            current.append(i)
    return "\n\n".join(p for p in pieces if p)
