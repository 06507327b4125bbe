"""The text-like oracle language (slow topic over fast syntax): tables, exact likelihood, the DataModule."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.data import HiddenMarkovLanguage, HMMSpec, SyntheticDataModule
from lightning_tsdfm.data.hmm import spec_from_dict
from lightning_tsdfm.data.textlike import TextlikeHMMSpec
from lightning_tsdfm.metrics import OracleJudge

TINY = TextlikeHMMSpec(vocab_size=6, num_topics=2, num_syntax=2, function_states=1, function_vocab=2, topic_stay=0.8,
                       branching=1, emissions_per_state=2, smoothing=0.05, seed=1)


def brute_force_log_likelihood(lang: HiddenMarkovLanguage, tokens: list[int]) -> float:
    total = 0.0
    for states in itertools.product(range(lang.num_states), repeat=len(tokens)):
        p = lang.initial[states[0]].item() * lang.emission[states[0], tokens[0]].item()
        for i in range(1, len(tokens)):
            p *= lang.transition[states[i - 1], states[i]].item() * lang.emission[states[i], tokens[i]].item()
        total += p
    return math.log(total)


def test_likelihood_equals_enumeration_over_hidden_paths():
    lang = HiddenMarkovLanguage(TINY)
    tokens = list(itertools.product(range(TINY.vocab_size), repeat=3))
    exact = lang.log_likelihood(torch.tensor(tokens))
    for seq, value in zip(tokens[::17], exact[::17]):
        assert value.item() == pytest.approx(brute_force_log_likelihood(lang, list(seq)), rel=1e-10)
    assert torch.logsumexp(exact, 0).item() == pytest.approx(0.0, abs=1e-10)  # a distribution over all sequences


@given(topics=st.integers(2, 4), syntax=st.integers(2, 5), stay=st.floats(0.5, 0.99), seed=st.integers(0, 100))
def test_tables_are_a_topic_chain_times_a_syntax_chain(topics, syntax, stay, seed):
    spec = TextlikeHMMSpec(vocab_size=40, num_topics=topics, num_syntax=syntax, function_states=1, function_vocab=8,
                           topic_stay=stay, branching=2, emissions_per_state=2, smoothing=0.01, seed=seed)
    lang = HiddenMarkovLanguage(spec)
    n = topics * syntax
    assert lang.transition.shape == (n, n) and lang.emission.shape == (n, 40)
    for table in (lang.transition, lang.emission):
        assert torch.allclose(table.sum(-1), torch.ones(n, dtype=torch.float64))
    blocks = lang.transition.reshape(topics, syntax, topics, syntax).sum(-1)  # P(z' | z, s) summed over s'
    assert torch.allclose(blocks[:, 0, :], torch.full((topics, topics), (1 - stay) / (topics - 1), dtype=torch.float64)
                          .fill_diagonal_(stay))
    function_rows = lang.emission.reshape(topics, syntax, 40)[:, 0]
    assert torch.allclose(function_rows, function_rows[:1].expand_as(function_rows))  # function words ignore the topic
    content = lang.emission.reshape(topics, syntax, 40)[:, 1:]
    slice_size = (40 - 8) // topics
    for z in range(topics):  # content words come (up to smoothing) from their topic's own slice
        own = content[z][:, 8 + z * slice_size: 8 + (z + 1) * slice_size].sum(-1)
        assert torch.all(own > 0.95)


def test_topic_is_long_range_and_syntax_short_range():
    spec = TextlikeHMMSpec(num_topics=4, num_syntax=8, function_states=2, function_vocab=16, vocab_size=64,
                           topic_stay=0.98, emissions_per_state=3)
    tokens = HiddenMarkovLanguage(spec).sample(2000, 64, torch.Generator().manual_seed(0))
    slice_size = (64 - 16) // 4
    topic_of = torch.where(tokens >= 16, (tokens - 16) // slice_size, -1)  # -1: a function word
    def same_topic(d: int) -> float:
        a, b = topic_of[:, :-d], topic_of[:, d:]
        both = (a >= 0) & (b >= 0)
        return (a == b)[both].float().mean().item()
    assert same_topic(30) > 0.5 > 0.25  # four topics: chance is 1/4; a run of ~50 tokens keeps it
    assert same_topic(1) > same_topic(30)


def test_cards_name_their_family_and_old_cards_still_read():
    assert spec_from_dict(TINY.to_dict()) == TINY
    sparse = HMMSpec(vocab_size=8, num_states=4)
    assert "family" not in sparse.to_dict() and spec_from_dict(sparse.to_dict()) == sparse
    with pytest.raises(ValueError, match="family"):
        spec_from_dict({**TINY.to_dict(), "family": "klingon"})


@pytest.mark.parametrize("bad, match", [
    (dict(num_topics=1), "num_topics"), (dict(function_states=2), "function_states"),
    (dict(emissions_per_state=9), "emissions_per_state"), (dict(topic_stay=1.0), "topic_stay"),
])
def test_bad_specs_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        TextlikeHMMSpec(**{**{k: v for k, v in TINY.to_dict().items() if k != "family"}, **bad})


def test_datamodule_chooses_the_family_by_a_config_key():
    dm = SyntheticDataModule(family="textlike", vocab_size=40, num_states=4, num_topics=3, function_states=1,
                             function_vocab=8, seq_len=16, num_train=64, num_val=8, batch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (8, 16) and batch.max() < 40
    card = dm.data_card()
    assert card["hmm"]["family"] == "textlike" and card["hmm"]["num_topics"] == 3
    judge = OracleJudge(card["hmm"])
    nll, count = judge.score(batch)
    assert torch.allclose(nll, -dm.language.log_likelihood(batch)) and torch.all(count == 16)
    with pytest.raises(ValueError, match="family"):
        SyntheticDataModule(family="klingon")
