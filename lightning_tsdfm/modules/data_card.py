"""The data card: what a checkpoint must carry to decode and judge its samples without the DataModule.

A DataModule provides ``data_card() -> dict`` with at least ``kind``, ``vocab_size`` and ``seq_len``
(synthetic: the language spec; text: the tokenizer). A module copies it at fit start, checks that it matches
its own vocabulary and length (:func:`check_fits`), and stores it in the header of every checkpoint. A run resumed from a checkpoint
(``--ckpt_path``) must be of the checkpoint's kind and train on the data of the checkpoint's card.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.modules.checkpoint import check_resumed_kind, checkpoint_name, header_of, write_header


class DataCardMixin:
    """Adds ``self.data_card`` to a LightningModule, checked against hparams vocab_size/seq_len, saved in the header of
    its checkpoints (:func:`~lightning_tsdfm.modules.checkpoint.write_header`)."""

    checkpoint_kind: str = "module"
    data_card: dict | None = None

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        card_fn = getattr(datamodule, "data_card", None)
        if card_fn is None:
            return
        card = card_fn()
        check_fits(type(self).__name__, self.hparams.vocab_size, self.hparams.seq_len, "the data", card["vocab_size"],
                   card["seq_len"])
        if self.data_card is not None and _identity(self.data_card) != _identity(card):
            raise ValueError(
                f"{type(self).__name__} was trained on {_identity(self.data_card)} but the DataModule provides "
                f"{_identity(card)}: tokenizer or language mismatch. Use the data the checkpoint was trained on."
            )
        self.data_card = card

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        write_header(checkpoint, self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Take the checkpoint's data card, after checking the checkpoint is of this module's kind and, when the
        module already holds the card of its DataModule (a resumed fit), that both cards describe the same data."""
        where = checkpoint_name(self)
        header = header_of(checkpoint, where)
        check_resumed_kind(header, type(self), where)
        card = header.get("data_card")
        if self.data_card is not None and card is not None:
            differences = card_differences(card, self.data_card)
            if differences:
                raise UserError(
                    f"{where} was trained on other data than this run's ({'; '.join(differences)}): resume with the "
                    f"data it was trained on, or start a new run without --ckpt_path."
                )
        self.data_card = card


def check_fits(who: str, vocab_size: int, seq_len: int, against: str, against_vocab_size: int,
               against_seq_len: int) -> None:
    """``who``, a model of ``vocab_size`` tokens built for sequences of ``seq_len``, serves ``against`` (the data, or
    the model whose states it scores) only with the same vocabulary and sequences no longer than its own."""
    if vocab_size != against_vocab_size:
        raise UserError(f"Vocabulary mismatch: {who} has vocab_size={vocab_size} but {against} has "
                        f"{against_vocab_size} tokens: use one tokenizer for both (`tsdfm fit` links model.vocab_size "
                        f"to the data's; omit it), or train {who} on this data.")
    if against_seq_len > seq_len:
        raise UserError(f"Sequence length mismatch: {against} has sequences of {against_seq_len} tokens but {who} was "
                        f"built for seq_len={seq_len}: set data.seq_len <= {seq_len}.")


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
