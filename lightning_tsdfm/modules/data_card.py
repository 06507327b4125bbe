"""The data card: what a checkpoint must carry to decode and judge its samples without the DataModule.

A DataModule provides ``data_card() -> dict`` with at least ``kind``, ``vocab_size`` and ``seq_len``
(synthetic: the language spec; text: the tokenizer). A module copies it at fit start, checks that it matches
its own vocabulary and length, and stores it in every checkpoint next to its kind.
"""

from __future__ import annotations

import hashlib
from typing import Any


class DataCardMixin:
    """Adds ``self.data_card`` to a LightningModule, checked against hparams vocab_size/seq_len, saved in checkpoints."""

    checkpoint_kind: str = "module"
    data_card: dict | None = None

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        card_fn = getattr(datamodule, "data_card", None)
        if card_fn is None:
            return
        card = card_fn()
        check_card_matches(card, self.hparams.vocab_size, self.hparams.seq_len, type(self).__name__)
        if self.data_card is not None and _identity(self.data_card) != _identity(card):
            raise ValueError(
                f"{type(self).__name__} was trained on {_identity(self.data_card)} but the DataModule provides "
                f"{_identity(card)}: tokenizer or language mismatch. Use the data the checkpoint was trained on."
            )
        self.data_card = card

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tsdfm"] = {
            "kind": self.checkpoint_kind,
            "class_path": f"{type(self).__module__}.{type(self).__qualname__}",
            "data_card": self.data_card,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.data_card = checkpoint.get("tsdfm", {}).get("data_card")


def check_card_matches(card: dict, vocab_size: int, seq_len: int, who: str) -> None:
    if card["vocab_size"] != vocab_size:
        raise ValueError(
            f"Vocabulary mismatch: {who} has vocab_size={vocab_size} but the data's tokenizer has "
            f"{card['vocab_size']} tokens. Let `tsdfm fit` link them (omit model.vocab_size) or retrain with the same tokenizer."
        )
    if card["seq_len"] > seq_len:
        raise ValueError(
            f"Sequence length mismatch: the data has blocks of {card['seq_len']} tokens but {who} was built for "
            f"seq_len={seq_len}. Set data.seq_len <= {seq_len}."
        )


def _identity(card: dict) -> tuple:
    """What must agree between two cards: kind, vocabulary, and the tokenizer or language itself."""
    tokenizer = hashlib.sha256(card.get("tokenizer_json", "").encode()).hexdigest()
    return (card.get("kind"), card.get("vocab_size"), tokenizer, str(card.get("hmm")))
