"""The data card: what a checkpoint must carry to decode and judge its samples without the DataModule.

A DataModule provides ``data_card() -> dict`` with at least ``kind``, ``vocab_size`` and ``seq_len``
(synthetic: the language spec; text: the tokenizer). A module copies it at fit start, checks that it matches
its own vocabulary and length, and stores it in every checkpoint next to its kind. A run resumed from a checkpoint
(``--ckpt_path``) must be of the checkpoint's kind and train on the data of the checkpoint's card.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lightning_tsdfm.errors import UserError


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
        """Take the checkpoint's data card, after checking the checkpoint is of this module's kind and, when the
        module already holds the card of its DataModule (a resumed fit), that both cards describe the same data."""
        header = checkpoint.get("tsdfm")
        where = checkpoint_name(self)
        if not isinstance(header, dict):
            raise UserError(f"{where} is not a lightning-tsdfm checkpoint (no 'tsdfm' header): resume only from a "
                            f"checkpoint written by `tsdfm fit`.")
        if header.get("kind") != self.checkpoint_kind:
            raise UserError(
                f"{where} is a {header.get('kind')!r} checkpoint, but this run trains a {type(self).__name__} "
                f"({self.checkpoint_kind!r}): resume from a {self.checkpoint_kind!r} checkpoint of the same config "
                f"(a teacher is given as --model.init_args.teacher_checkpoint, not --ckpt_path)."
            )
        card = header.get("data_card")
        if self.data_card is not None and card is not None:
            differences = card_differences(card, self.data_card)
            if differences:
                raise UserError(
                    f"{where} was trained on other data than this run's ({'; '.join(differences)}): resume with the "
                    f"data it was trained on, or start a new run without --ckpt_path."
                )
        self.data_card = card


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


def card_differences(trained: dict, given: dict) -> list[str]:
    """What differs between the data card a checkpoint was trained on and the one given now, as
    ``"<field>: <trained> -> <given>"`` (empty when they describe the same data)."""
    fields = ["kind", "vocab_size", "seq_len", "hmm", "tokenizer_fingerprint"]
    fields += ["corpus_hash"] if "corpus_hash" in trained and "corpus_hash" in given else ["corpus"]
    differences = []
    for field in fields:
        a, b = trained.get(field), given.get(field)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):  # the language: name the parameters that differ
            differences += [f"{field}.{k}: {_short(a.get(k))} -> {_short(b.get(k))}"
                            for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        elif field in ("tokenizer_fingerprint", "corpus_hash"):
            differences.append(f"{field}: another {field.split('_')[0]}")
        else:
            differences.append(f"{field}: {_short(a)} -> {_short(b)}")
    return differences


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def checkpoint_name(module) -> str:
    """The checkpoint a module is being restored from, as far as it knows."""
    trainer = getattr(module, "_trainer", None)
    path = getattr(trainer, "ckpt_path", None) if trainer is not None else None
    return str(path) if path else "The checkpoint"
