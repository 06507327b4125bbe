"""Turn text a user types into token ids from a data card alone: the inverse of :mod:`lightning_tsdfm.data.decoding`.

- a text card: its tokenizer's ids, refused (:class:`~lightning_tsdfm.errors.UserError`) when the tokenizer cannot
  encode the text: a character it drops, or one it can only map to its unknown token;
- a synthetic card (no tokenizer): a list of token ids separated by spaces, each written as the decoder shows it
  (``t17``) or as the number itself (``17``).
"""

from __future__ import annotations

import re
from typing import Callable

from lightning_tsdfm.data.tokenizer import tokenizer_from_card
from lightning_tsdfm.errors import UserError

Encoder = Callable[[str], list[int]]

_SYNTHETIC_ID = re.compile(r"t?(\d+)")


def encoder_from_card(card: dict) -> Encoder:
    """text -> token ids of the data the card describes."""
    if card["kind"] == "synthetic":
        return lambda text: synthetic_ids(text, int(card["vocab_size"]))
    if card["kind"] == "text":
        tokenizer = tokenizer_from_card(card)
        return lambda text: text_ids(tokenizer.backend, text)
    raise ValueError(f"Unknown data card kind {card['kind']!r}.")


def synthetic_ids(text: str, vocab_size: int) -> list[int]:
    """'t3 t17 5' -> [3, 17, 5]: ids of a synthetic language, each in [0, vocab_size)."""
    ids = []
    for item in text.split():
        match = _SYNTHETIC_ID.fullmatch(item)
        if match is None:
            raise UserError(f"{item!r} is not a token id: a synthetic language has no tokenizer, so write its tokens as "
                            f"ids separated by spaces, e.g. 't3 t17 t5' or '3 17 5' (ids in [0, {vocab_size})).")
        ids.append(int(match.group(1)))
        if ids[-1] >= vocab_size:
            raise UserError(f"Token id {ids[-1]} ({item!r}) is outside this language's vocabulary [0, {vocab_size}).")
    return ids


def text_ids(backend, text: str) -> list[int]:
    """The ids of ``text`` under a ``tokenizers.Tokenizer``, refused when a character of it is dropped or becomes the
    tokenizer's unknown token."""
    try:
        encoding = backend.encode(text, add_special_tokens=False)
    except Exception as err:  # tokenizers raises a bare Exception when a model has no token for a piece of the text
        raise UserError(f"The tokenizer cannot encode {_short(text)}: {err}. Remove or replace the characters it has no "
                        f"token for.") from None
    unknown = getattr(backend.model, "unk_token", None)
    covered = set()
    for token, (begin, end) in zip(encoding.tokens, encoding.offsets):
        if token != unknown:
            covered.update(range(begin, end))
    lost = [c for i, c in enumerate(text) if i not in covered and not c.isspace()]
    if lost:
        shown = "".join(dict.fromkeys(lost))
        raise UserError(f"The tokenizer cannot encode {shown!r} in {_short(text)}: it has no token for "
                        f"{'it' if len(shown) == 1 else 'them'}. Remove or replace {'it' if len(shown) == 1 else 'them'}"
                        f" (a byte-level tokenizer, such as the library's bpe or gpt2, encodes any text).")
    return list(encoding.ids)


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")
