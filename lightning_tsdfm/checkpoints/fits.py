"""Whether a checkpoint fits what it is used with: a model's vocabulary and sequence length against the data or the
model whose states it scores (:func:`check_fits`), and whether two data cards describe the same data
(:func:`card_identity`, :func:`card_differences`)."""

from __future__ import annotations

import hashlib

from lightning_tsdfm.errors import UserError


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


def card_identity(card: dict) -> tuple:
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
