"""The conditional oracle against enumeration on a tiny language: p(x_K) is the sum of p(x) over every filling,
p(x_F | x_K) sums to one over the fillings; and the conditional figures (perplexity, reverse perplexity, entropy of
the filled tokens)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_tsdfm.data.hmm import HiddenMarkovLanguage, HMMSpec
from lightning_tsdfm.data.textlike import TextlikeHMMSpec
from lightning_tsdfm.metrics.conditional import (
    conditional_log_likelihood,
    conditional_perplexity,
    conditional_reverse_perplexity,
    filled_entropy,
    known_log_likelihood,
)

V, L = 3, 4
LANGUAGE = HiddenMarkovLanguage(HMMSpec(vocab_size=V, num_states=2, branching=2, emissions_per_state=2, smoothing=0.1))
EVERY = torch.tensor(list(itertools.product(range(V), repeat=L)))  # all V^L sequences
P_EVERY = LANGUAGE.log_likelihood(EVERY).exp()


@settings(max_examples=30)
@given(st.lists(st.booleans(), min_size=L, max_size=L), st.integers(0, V**L - 1))
def test_the_known_marginal_and_the_conditional_are_those_of_enumeration(known_list, index):
    known = torch.tensor(known_list)
    x = EVERY[index]
    agree = (EVERY[:, known] == x[known]).all(-1)  # every sequence with x's known tokens
    marginal = P_EVERY[agree].sum()
    assert known_log_likelihood(LANGUAGE, x[None], known[None]).exp().item() == pytest.approx(marginal.item(), rel=1e-9)
    conditional = conditional_log_likelihood(LANGUAGE, EVERY[agree], known.expand(int(agree.sum()), -1)).exp()
    assert conditional.sum().item() == pytest.approx(1.0, rel=1e-9)  # a distribution over the fillings
    assert torch.allclose(conditional, P_EVERY[agree] / marginal, rtol=1e-9)


def test_nothing_known_is_the_likelihood_and_everything_known_is_certain():
    assert torch.allclose(known_log_likelihood(LANGUAGE, EVERY, torch.zeros_like(EVERY, dtype=torch.bool)),
                          torch.zeros(len(EVERY), dtype=torch.float64), atol=1e-12)
    assert torch.allclose(conditional_log_likelihood(LANGUAGE, EVERY, torch.ones_like(EVERY, dtype=torch.bool)),
                          torch.zeros(len(EVERY), dtype=torch.float64), atol=1e-12)


def test_conditional_perplexity_is_the_exponent_of_the_mean_filled_nll():
    known = torch.tensor([True, False, True, False]).expand(len(EVERY), -1)
    figures = conditional_perplexity(LANGUAGE, EVERY, known)
    expected = -conditional_log_likelihood(LANGUAGE, EVERY, known).sum() / (2 * len(EVERY))
    assert figures["cond_ppl"] == pytest.approx(math.exp(expected.item()))
    assert figures["filled_tokens"] == 2 and figures["nll_stderr"] > 0
    with pytest.raises(ValueError, match="no filled position"):
        conditional_perplexity(LANGUAGE, EVERY[:2], torch.ones(2, L, dtype=torch.bool))


def test_exact_completions_score_the_languages_conditional_entropy():
    """Completions drawn from the language itself: their conditional perplexity estimates exp(H(x_F | x_K) / |F|),
    whose exact value enumeration gives."""
    known_prefix = torch.tensor([True, True, False, False])
    entropy = 0.0
    for prefix in itertools.product(range(V), repeat=2):
        agree = (EVERY[:, :2] == torch.tensor(prefix)).all(-1)
        p_prefix = P_EVERY[agree].sum()
        p_fill = P_EVERY[agree] / p_prefix
        entropy -= (p_prefix * (p_fill * p_fill.log()).sum()).item()
    draws = LANGUAGE.sample(4000, L, torch.Generator().manual_seed(0))
    figures = conditional_perplexity(LANGUAGE, draws, known_prefix.expand(len(draws), -1))
    assert math.log(figures["cond_ppl"]) == pytest.approx(entropy / 2, abs=4 * figures["nll_stderr"])


def test_the_textlike_language_scores_a_filled_span():
    language = HiddenMarkovLanguage(TextlikeHMMSpec(vocab_size=16, num_topics=2, num_syntax=4, function_states=1,
                                                    function_vocab=4, emissions_per_state=2))
    x = language.sample(8, 12, torch.Generator().manual_seed(1))
    known = torch.ones(8, 12, dtype=torch.bool)
    known[:, 4:8] = False
    total = language.log_likelihood(x)
    assert torch.allclose(conditional_log_likelihood(language, x, known) + known_log_likelihood(language, x, known), total)
    assert (conditional_log_likelihood(language, x, known) < 0).all()


def test_filled_entropy_counts_only_the_filled_tokens():
    tokens = torch.tensor([[0, 1, 1, 2], [2, 2, 2, 2]])
    known = torch.tensor([[True, False, False, False], [False, False, True, True]])
    entropy = filled_entropy(tokens, known)
    assert entropy[0].item() == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    assert entropy[1].item() == 0.0


def test_conditional_reverse_perplexity_rewards_covering_the_data():
    known = torch.tensor([True, True, False, False]).expand(len(EVERY), -1)
    heldout = LANGUAGE.sample(500, L, torch.Generator().manual_seed(2))
    heldout_known = torch.tensor([True, True, False, False]).expand(len(heldout), -1)
    covering = conditional_reverse_perplexity(EVERY, known, heldout, heldout_known, V)
    collapsed = EVERY.clone()
    collapsed[:, 2:] = 0  # every completion fills zeros
    assert conditional_reverse_perplexity(collapsed, known, heldout, heldout_known, V) > covering
    assert 1 < covering < V + 0.5
