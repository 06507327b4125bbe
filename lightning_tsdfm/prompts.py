"""Prompts and templates: what a user fixes of the sequences to generate, as text, turned into known positions.

- a **prompt** is a prefix: its tokens are positions 0 .. n-1, everything after it is generated;
- a **template** fixes tokens anywhere: each ``[MASK]`` is one position to fill, the text between masks is known,
  and everything after the template is generated too ("The[MASK] sat on the[MASK][MASK] mat.").

Text is encoded with the data card's tokenizer (:func:`~lightning_tsdfm.data.encoding.encoder_from_card`; a synthetic
language's tokens are written as ids, ``t3 [MASK] t17``). Whitespace just before a position to fill belongs to the
token that fills it (a byte-level tokenizer's word tokens carry their leading space), so the trailing whitespace of
every known piece is dropped: "The [MASK] sat" and "The[MASK] sat" are one template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.data.encoding import Encoder, encoder_from_card
from lightning_tsdfm.errors import UserError

#: the mark of a position to fill in a template
MASK = "[MASK]"


@dataclass(frozen=True)
class Condition:
    """A prompt or template as written (``text``) and its positions: a known token id, or None where to fill."""

    kind: Literal["prompt", "template"]
    text: str
    ids: tuple[int | None, ...]

    @property
    def known_positions(self) -> list[int]:
        return [i for i, token in enumerate(self.ids) if token is not None]

    def given(self, length: int, rows: int = 1) -> Given:
        """``rows`` copies of the known tokens over sequences of ``length`` positions (the ones past the condition
        free)."""
        tokens = torch.zeros(length, dtype=torch.long)
        known = torch.zeros(length, dtype=torch.bool)
        for i, token in enumerate(self.ids):
            if token is not None:
                tokens[i], known[i] = token, True
        return Given(tokens.expand(rows, -1).clone(), known.expand(rows, -1).clone())

    def record(self) -> dict:
        """What a sample file keeps of it, beside each sample: the text under its kind, and the known positions."""
        return {self.kind: self.text, "given_positions": self.known_positions}

    def check_fits(self, length: int, seq_len: int) -> None:
        """The condition must leave a position to fill among the ``length`` generated (the model's ``seq_len``
        unless a longer length is asked for)."""
        n = len(self.ids)
        what = f"The {self.kind} {_short(self.text)} is {n} tokens"
        if self.kind == "prompt" and n >= length:
            if length == seq_len:
                raise UserError(f"{what}, and the model's length is {seq_len} (its seq_len), so nothing is left to "
                                f"generate: shorten it, or generate longer sequences with --length N (N > {n}), which "
                                f"continues it block by block.")
            raise UserError(f"{what}, which leaves nothing to generate in --length {length}: raise --length above {n}.")
        if n > length:
            raise UserError(f"{what}, longer than the {length} tokens generated (the model's length is {seq_len}): "
                            f"shorten it, or raise --length to {n} or more.")


def parse_prompt(text: str, encode: Encoder) -> Condition:
    """A prefix, encoded whole (its trailing whitespace dropped: the next token carries it)."""
    if MASK in text:
        raise UserError(f"The prompt {_short(text)} holds {MASK}: a prompt is a prefix, generated after; pass it as a "
                        f"template (--template) to fill its masks.")
    ids = encode(text.rstrip()) if text.strip() else []
    if not ids:
        raise UserError(f"The prompt {_short(text)} has no tokens: give some text, or drop --prompt to sample "
                        f"unconditionally.")
    return Condition("prompt", text, tuple(ids))


def parse_template(text: str, encode: Encoder) -> Condition:
    """Known pieces between ``[MASK]`` marks, each mark one position to fill."""
    pieces = re.split(f"({re.escape(MASK)})", text)
    if MASK not in pieces:
        raise UserError(f"The template {_short(text)} has no {MASK}: mark each position to fill with {MASK} (\"The "
                        f"{MASK} sat on the {MASK} mat.\"), or pass a prefix as a prompt (--prompt).")
    ids: list[int | None] = []
    for piece in pieces:
        if piece == MASK:
            ids.append(None)
        elif piece.strip():
            ids += encode(piece.rstrip())
    return Condition("template", text, tuple(ids))


def parse_condition(text: str, encode: Encoder) -> Condition:
    """A template when ``text`` holds a ``[MASK]``, else a prompt."""
    return parse_template(text, encode) if MASK in text else parse_prompt(text, encode)


def read_prompts_file(path: str | Path, encode: Encoder) -> list[Condition]:
    """One prompt or template a line (:func:`parse_condition`); blank lines are skipped. An error names the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Prompts file {path} does not exist: write one prompt or template a line into it.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"Prompts file {path} is not UTF-8 text ({err.reason} at byte {err.start}).") from None
    conditions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            conditions.append(parse_condition(line, encode))
        except UserError as err:
            raise UserError(f"{path}, line {number}: {err}") from None
    if not conditions:
        raise UserError(f"Prompts file {path} holds no prompt: write one prompt or template a line into it.")
    return conditions


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


def conditions_from(card: dict, prompt: str | None = None, template: str | None = None,
                    prompts: list[str] | None = None, prompts_file: str | Path | None = None) -> list[Condition]:
    """The conditions asked for, at most one way (a prompt, a template, a list of either, a file of either), encoded
    with the data card's tokenizer; none when nothing is asked."""
    asked = {name: value for name, value in (("prompt", prompt), ("template", template), ("prompts", prompts),
                                             ("prompts_file", prompts_file)) if value is not None}
    if len(asked) > 1:
        raise UserError(f"Give one of a prompt, a template or a prompts file, not {' and '.join(asked)}.")
    if not asked:
        return []
    encode = encoder_from_card(card)
    if prompt is not None:
        return [parse_prompt(prompt, encode)]
    if template is not None:
        return [parse_template(template, encode)]
    if prompts is not None:
        if not prompts:
            raise UserError("The list of prompts is empty: give at least one prompt or template.")
        return [parse_condition(text, encode) for text in prompts]
    return read_prompts_file(prompts_file, encode)
