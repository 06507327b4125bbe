"""Turn token ids back into text from a data card alone (no DataModule needed)."""

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
        return lambda ids: [tokenizer.decode(row.tolist()) for row in ids]
    raise ValueError(f"Unknown data card kind {card['kind']!r}.")
