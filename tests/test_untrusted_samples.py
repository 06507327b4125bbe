"""Sample files are untrusted input: their tokens and data card are checked before `tsdfm evaluate` builds anything
from them, so a crafted card is one clear error line, never an oversized oracle or a traceback."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from lightning_tsdfm import sample_card
from lightning_tsdfm.cli import evaluate, main
from lightning_tsdfm.data.hmm import HiddenMarkovLanguage, spec_from_dict
from lightning_tsdfm.errors import UserError, user_message
from lightning_tsdfm.metrics import judges
from lightning_tsdfm.metrics.judges import OracleJudge
from lightning_tsdfm.samples_io import read_jsonl

SPARSE = {"vocab_size": 8, "num_states": 4, "branching": 2, "emissions_per_state": 2, "smoothing": 0.01, "seed": 0}
CARD = {"kind": "synthetic", "vocab_size": 8, "seq_len": 4, "hmm": SPARSE}
TOKENS = [[1, 2, 3, 0], [3, 2, 1, 0]]


def _write(path, card, tokens=TOKENS, blank_first: bool = False):
    """A sample file of ``tokens``, every line with the data card ``card``."""
    rows = [json.dumps({"index": i, "text": "x", "tokens": ids, "steps": 2, "seed": 0, "data": card})
            for i, ids in enumerate(tokens)]
    path.write_text(("\n" if blank_first else "") + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def no_oracle(monkeypatch):
    """Fail the test if the oracle's language is built at all."""
    def refuse(*args, **kwargs):
        raise AssertionError("HiddenMarkovLanguage was built from a card that should have been refused")

    monkeypatch.setattr(judges, "HiddenMarkovLanguage", refuse)


def test_a_huge_language_is_refused_before_the_oracle_is_built(tmp_path, monkeypatch, capsys, no_oracle):
    """``data.hmm.num_states = 40000`` (tables of 12.8 GB) is one error line naming the file, the line and the
    size, exit status 2, and no HiddenMarkovLanguage is built."""
    path = _write(tmp_path / "huge.jsonl", {**CARD, "hmm": {**SPARSE, "num_states": 40_000}}, blank_first=True)
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(path), "--judges", "oracle"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("tsdfm: error:")]
    assert info.value.code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert f"{path}, line 2:" in errors[0] and "40000 hidden states" in errors[0] and "12.8 GB" in errors[0]


#: a malformed card -> what its error names
MALFORMED = {
    "unknown card key": ({**CARD, "payload": 1}, "unknown data-card key 'payload'"),
    "unknown language key": ({**CARD, "hmm": {**SPARSE, "num_topics": 4}}, "unknown key 'num_topics' in data.hmm"),
    "unknown family": ({**CARD, "hmm": {**SPARSE, "family": "pickle"}}, "data.hmm.family must be one of"),
    "card not an object": ([1, 2], "'data' (the data card) must be an object, got list"),
    "language not an object": ({**CARD, "hmm": "sparse"}, "data.hmm (the language) must be an object"),
    "vocab_size a string": ({**CARD, "vocab_size": "8"}, "data.vocab_size must be an integer in [1, 1048576], got '8'"),
    "seq_len a bool": ({**CARD, "seq_len": True}, "data.seq_len must be an integer"),
    "seq_len huge": ({**CARD, "seq_len": 10**12}, "data.seq_len must be an integer in [1, 1048576]"),
    "kind unknown": ({**CARD, "kind": "binary"}, "data.kind must be one of synthetic, text"),
    "synthetic without a language": ({"kind": "synthetic", "vocab_size": 8}, "needs its language, data.hmm"),
    "vocab_size disagrees": ({**CARD, "vocab_size": 9}, "data.vocab_size = 9 but its language has"),
    "smoothing not a number": ({**CARD, "hmm": {**SPARSE, "smoothing": "0.01"}}, "data.hmm.smoothing must be a finite"),
    "branching too large": ({**CARD, "hmm": {**SPARSE, "branching": 5}}, "data.hmm is not a valid sparse language"),
    "seed too large": ({**CARD, "hmm": {**SPARSE, "seed": 2**64}}, "data.hmm.seed must be an integer"),
    "textlike too large": ({**CARD, "vocab_size": 40_000, "hmm": {"family": "textlike", "vocab_size": 40_000,
                                                                   "num_topics": 512, "num_syntax": 64}},
                           "describes a language of 32768 hidden states"),
    "corpus not a string": ({"kind": "text", "corpus": {"path": "x"}}, "data.corpus must be a string"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_card_is_named_with_its_file_and_line(case, tmp_path, no_oracle):
    card, expected = MALFORMED[case]
    path = _write(tmp_path / "bad.jsonl", card, blank_first=True)
    with pytest.raises(UserError) as info:
        read_jsonl(path)
    assert f"{path}, line 2: " in str(info.value) and expected in str(info.value), str(info.value)


@pytest.mark.parametrize("tokens, expected", [
    ([[1, 2, 3, 0], [1, 2]], "2 tokens, but the lines before have 4"),
    ([[1, 2, 3, 0, 1]], "5 tokens, but the data card gives seq_len = 4"),
    ([[1, -2, 3, 0]], "'tokens' must be a non-empty list of non-negative integer token ids"),
    ([[1, 2.5, 3, 0]], "'tokens' must be a non-empty list"),
    ([[]], "'tokens' must be a non-empty list"),
], ids=["ragged", "longer than seq_len", "negative", "float", "empty"])
def test_malformed_tokens_are_named_with_their_line(tokens, expected, tmp_path):
    with pytest.raises(UserError, match="line") as info:
        read_jsonl(_write(tmp_path / "bad.jsonl", CARD, tokens))
    assert expected in str(info.value)


def test_json_nested_too_deeply_is_named_with_its_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "x", "tokens": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(UserError, match="line 1: JSON nested too deeply"):
        read_jsonl(path)


def test_the_oracle_scores_in_bounded_batches():
    """Scored a few sequences at a time, the oracle gives each sequence the NLL it gives it scored all at once."""
    judge = OracleJudge(SPARSE)
    tokens = judge.language.sample(7, 6, torch.Generator().manual_seed(0))
    whole, count = judge.score(tokens)
    judge.batch_entries = 2 * 6 * judge.language.num_states  # two sequences a batch
    batched, _ = judge.score(tokens)
    torch.testing.assert_close(batched, whole)
    assert torch.equal(count, torch.full((7,), 6.0, dtype=count.dtype))


# ---- fuzz: any card is either a clean error or a correct score, and never builds an oversized language

SMALL_STATES, SMALL_ENTRIES = 64, 64 * 128
TEXTLIKE = {"family": "textlike", "vocab_size": 16, "num_topics": 2, "num_syntax": 3, "function_states": 1,
            "function_vocab": 8, "topic_stay": 0.9, "branching": 2, "emissions_per_state": 2, "smoothing": 0.01,
            "seed": 0}
VALUES = st.one_of(st.integers(-2, 12), st.sampled_from([0, 64, 40_000, 2**40, 2**64]), st.booleans(), st.none(),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
                   st.lists(st.integers(0, 3), max_size=2),
                   st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))
KEYS = ("kind", "vocab_size", "seq_len", "hmm", "corpus", "family", "num_states", "num_topics", "num_syntax",
        "function_states", "function_vocab", "topic_stay", "branching", "emissions_per_state", "smoothing", "seed",
        "bogus")


@st.composite
def cards(draw) -> object:
    """A data card that starts as a small valid one (a sparse or a text-like language) and takes up to four random
    changes, each setting a key of the card or of its language to any value, or dropping it; now and then the whole
    card is any value instead."""
    if draw(st.integers(0, 9)) == 0:
        return draw(VALUES)
    language = dict(draw(st.sampled_from([SPARSE, TEXTLIKE])))
    card = {**CARD, "vocab_size": language["vocab_size"], "hmm": language}
    for _ in range(draw(st.integers(0, 4))):
        target, key = draw(st.sampled_from([card, language])), draw(st.sampled_from(KEYS))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(VALUES)
    return card


class _BoundedLanguage(HiddenMarkovLanguage):
    """HiddenMarkovLanguage that fails the test when asked for tables beyond the (lowered) sample-file bounds."""

    def __init__(self, spec) -> None:
        spec = spec_from_dict(spec) if isinstance(spec, dict) else spec
        states = spec.num_states
        assert states <= SMALL_STATES and states * (states + spec.vocab_size) <= SMALL_ENTRIES, spec
        super().__init__(spec)


@given(card=cards())
@example(card=CARD)
@example(card={**CARD, "hmm": {**SPARSE, "num_states": 40_000}})
@example(card={"kind": "synthetic", "hmm": {"family": "textlike", "vocab_size": 40, "num_topics": 2, "num_syntax": 3,
                                            "function_states": 1, "function_vocab": 8}})
def test_fuzzed_cards_are_a_clean_error_or_a_correct_score(card, tmp_path_factory, monkeypatch):
    """``tsdfm evaluate --judges oracle`` on a file with any card either refuses it with an error the user can act
    on, or scores it as the oracle scores its tokens; the language it builds stays within the bounds."""
    monkeypatch.setattr(sample_card, "MAX_HIDDEN_STATES", SMALL_STATES)
    monkeypatch.setattr(sample_card, "MAX_TABLE_ENTRIES", SMALL_ENTRIES)
    monkeypatch.setattr(judges, "HiddenMarkovLanguage", _BoundedLanguage)
    path = _write(tmp_path_factory.mktemp("fuzz") / "s.jsonl", card)
    try:
        rows = evaluate([str(path)], judges=["oracle"])
    except Exception as error:  # noqa: BLE001 - any error must be one the user can act on
        assert user_message(error) is not None, f"{type(error).__name__}: {error}"
        return
    tokens = torch.tensor(TOKENS)
    expected = math.exp(-HiddenMarkovLanguage(card["hmm"]).log_likelihood(tokens).sum().item() / tokens.numel())
    assert rows[0]["n_samples"] == len(TOKENS) and rows[0]["gen_ppl"] == pytest.approx(expected)
