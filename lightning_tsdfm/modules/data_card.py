"""The data card: what a checkpoint must carry to decode and judge its samples without the DataModule.

A DataModule provides ``data_card() -> dict`` with at least ``kind``, ``vocab_size`` and ``seq_len``
(synthetic: the language spec; text: the tokenizer). A module copies it at fit start, checks that it matches
its own vocabulary and length (:func:`~lightning_tsdfm.checkpoints.fits.check_fits`), and stores it in the header of
every checkpoint. A run resumed from a checkpoint (``--ckpt_path``) must be of the checkpoint's kind and train on the
data of the checkpoint's card.
"""

from __future__ import annotations

from typing import Any

from lightning_tsdfm.checkpoints.fits import card_differences, card_identity, check_fits
from lightning_tsdfm.checkpoints.header import check_resumed_kind, checkpoint_name, header_of, write_header
from lightning_tsdfm.errors import UserError


class DataCardMixin:
    """Adds ``self.data_card`` to a LightningModule, checked against hparams vocab_size/seq_len, saved in the header of
    its checkpoints (:func:`~lightning_tsdfm.checkpoints.header.write_header`)."""

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
        if self.data_card is not None and card_identity(self.data_card) != card_identity(card):
            raise ValueError(
                f"{type(self).__name__} was trained on {card_identity(self.data_card)} but the DataModule provides "
                f"{card_identity(card)}: tokenizer or language mismatch. Use the data the checkpoint was trained on."
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
