"""The rows of a sample file, checked as untrusted input before anything is built from them.

A sample file's data card (its ``data`` field, :func:`~lightning_tsdfm.samples_io.judge_card`) sizes what
``tsdfm evaluate`` builds: the oracle judge's tables hold hidden states x (hidden states + tokens) float64 entries.
So a card may hold only the keys :func:`~lightning_tsdfm.samples_io.judge_card` writes, each of the right type and
within the bounds below, and a synthetic language only the fields of its family's spec; the tokens must be one
rectangular table of non-negative integers no longer than the card's ``seq_len``.
"""

from __future__ import annotations

import dataclasses
import math

from lightning_tsdfm.data.hmm import HMMSpec
from lightning_tsdfm.data.textlike import TextlikeHMMSpec
from lightning_tsdfm.errors import UserError

#: the keys of a sample file's data card, as :func:`~lightning_tsdfm.samples_io.judge_card` writes them
CARD_KEYS = ("kind", "vocab_size", "seq_len", "hmm", "corpus")
CARD_KINDS = ("synthetic", "text")
LANGUAGES = {spec.family: spec for spec in (HMMSpec, TextlikeHMMSpec)}

#: the largest vocabulary and sequence length a sample file may give
MAX_VOCAB_SIZE = 1 << 20
MAX_SEQ_LEN = 1 << 20
#: the largest synthetic language a sample file may describe: hidden states, and float64 entries of its tables
#: (transition and emission: 256 MiB) and of the oracle's forward pass over one sequence (seq_len x hidden states)
MAX_HIDDEN_STATES = 4096
MAX_TABLE_ENTRIES = 1 << 25
#: the largest token id and language seed
MAX_TOKEN_ID = (1 << 63) - 1
MAX_SEED = (1 << 63) - 1

_REWRITE = "Write the samples again with `tsdfm sample` (a sample file is read as untrusted input)."


def check_row(row: dict, where: str, width: int | None) -> int:
    """Refuse a sample row whose ``tokens``, ``text`` or data card (:func:`check_card`) is malformed or oversized;
    ``width`` is the token count of the rows before (None for the first). Returns this row's token count."""
    tokens = row["tokens"]
    if not (isinstance(tokens, list) and tokens and all(_is_int(t) and 0 <= t <= MAX_TOKEN_ID for t in tokens)):
        raise UserError(f"{where}: 'tokens' must be a non-empty list of non-negative integer token ids. {_REWRITE}")
    if width is not None and len(tokens) != width:
        raise UserError(f"{where}: {len(tokens)} tokens, but the lines before have {width}: every sample of a file "
                        f"has the same length. {_REWRITE}")
    if not isinstance(row["text"], str):
        raise UserError(f"{where}: 'text' must be a string, got {type(row['text']).__name__}. {_REWRITE}")
    check_condition(row, len(tokens), where)
    if "length" in row:  # generated past the model's length (semi-autoregressively) or cut shorter
        _check_int(row["length"], "length", 1, MAX_SEQ_LEN, where)
    if "data" in row:
        check_card(row["data"], where, row.get("length"))
        limit = ("length", row["length"]) if "length" in row else ("the data card gives seq_len", row["data"].get("seq_len"))
        if limit[1] is not None and len(tokens) > limit[1]:
            raise UserError(f"{where}: {len(tokens)} tokens, but {limit[0]} = {limit[1]}. {_REWRITE}")
    return len(tokens)


def check_condition(row: dict, width: int, where: str) -> None:
    """A conditioned sample's prompt or template must be a string, and its ``given_positions`` distinct positions of
    its tokens."""
    for key in ("prompt", "template"):
        if key in row and not isinstance(row[key], str):
            raise UserError(f"{where}: '{key}' must be a string, got {_short(row[key])}. {_REWRITE}")
    if "given_positions" in row:
        positions = row["given_positions"]
        if not (isinstance(positions, list) and all(_is_int(p) and 0 <= p < width for p in positions)
                and len(set(positions)) == len(positions)):
            raise UserError(f"{where}: 'given_positions' must be a list of distinct positions in [0, {width}). "
                            f"{_REWRITE}")


def check_card(card, where: str, length: int | None = None) -> None:
    """Refuse a data card with an unknown key, a value of the wrong type or out of bounds, or a synthetic language
    that is ill-formed or too large to build (:func:`check_language`) or to score over ``length`` tokens (default its
    seq_len), before anything is built from it."""
    if not isinstance(card, dict):
        raise UserError(f"{where}: 'data' (the data card) must be an object, got {type(card).__name__}. {_REWRITE}")
    for key in card:
        if key not in CARD_KEYS:
            raise UserError(f"{where}: unknown data-card key {key!r} in 'data' (known: {', '.join(CARD_KEYS)}). "
                            f"{_REWRITE}")
    kind = card.get("kind")
    if kind is not None and not (isinstance(kind, str) and kind in CARD_KINDS):
        raise UserError(f"{where}: data.kind must be one of {', '.join(CARD_KINDS)}, got {_short(kind)}. {_REWRITE}")
    for key, bound in (("vocab_size", MAX_VOCAB_SIZE), ("seq_len", MAX_SEQ_LEN)):
        if key in card:
            _check_int(card[key], f"data.{key}", 1, bound, where)
    if "corpus" in card and not isinstance(card["corpus"], str):
        raise UserError(f"{where}: data.corpus must be a string, got {_short(card['corpus'])}. {_REWRITE}")
    if kind == "synthetic" and "hmm" not in card:
        raise UserError(f"{where}: a synthetic data card needs its language, data.hmm. {_REWRITE}")
    if "hmm" in card:
        language = check_language(card["hmm"], where)
        if card.get("vocab_size", language.vocab_size) != language.vocab_size:
            raise UserError(f"{where}: data.vocab_size = {card['vocab_size']} but its language has "
                            f"data.hmm.vocab_size = {language.vocab_size}. {_REWRITE}")
        scored = length or card.get("seq_len", 1)
        if scored * language.num_states > MAX_TABLE_ENTRIES:
            raise UserError(f"{where}: sequences of {scored} tokens with {language.num_states} hidden states are "
                            f"too large for the oracle (at most {MAX_TABLE_ENTRIES} = length x hidden states). "
                            f"{_REWRITE}")


def check_language(spec, where: str) -> HMMSpec | TextlikeHMMSpec:
    """The synthetic language a card's ``hmm`` describes (its spec only: no table is built), after checking its
    family, its fields and their types, and that its tables fit :data:`MAX_HIDDEN_STATES` and
    :data:`MAX_TABLE_ENTRIES`."""
    if not isinstance(spec, dict):
        raise UserError(f"{where}: data.hmm (the language) must be an object, got {type(spec).__name__}. {_REWRITE}")
    fields = dict(spec)
    family = fields.pop("family", HMMSpec.family)
    if not (isinstance(family, str) and family in LANGUAGES):
        raise UserError(f"{where}: data.hmm.family must be one of {', '.join(LANGUAGES)}, got {_short(family)}. "
                        f"{_REWRITE}")
    types = {field.name: field.type for field in dataclasses.fields(LANGUAGES[family])}
    for key, value in fields.items():
        if key not in types:
            raise UserError(f"{where}: unknown key {key!r} in data.hmm (a {family} language has "
                            f"{', '.join(types)}). {_REWRITE}")
        if types[key] in ("int", int):
            _check_int(value, f"data.hmm.{key}", 0, MAX_SEED if key == "seed" else MAX_VOCAB_SIZE, where)
        elif not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            raise UserError(f"{where}: data.hmm.{key} must be a finite number, got {_short(value)}. {_REWRITE}")
    try:
        language = LANGUAGES[family](**fields)
    except ValueError as err:
        raise UserError(f"{where}: data.hmm is not a valid {family} language: {err} {_REWRITE}") from None
    states, entries = language.num_states, language.num_states * (language.num_states + language.vocab_size)
    if states > MAX_HIDDEN_STATES or entries > MAX_TABLE_ENTRIES:
        raise UserError(
            f"{where}: data.hmm describes a language of {states} hidden states and {language.vocab_size} tokens, "
            f"whose tables would take {entries * 8 / 1e9:.1f} GB; a sample file's language may have at most "
            f"{MAX_HIDDEN_STATES} hidden states and {MAX_TABLE_ENTRIES} table entries. {_REWRITE}")
    return language


def _check_int(value, name: str, low: int, high: int, where: str) -> None:
    if not (_is_int(value) and low <= value <= high):
        raise UserError(f"{where}: {name} must be an integer in [{low}, {high}], got {_short(value)}. {_REWRITE}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
