"""The hidden-Markov oracle language: tables, exact likelihood, perplexity, and the oracle judge."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.data import HiddenMarkovLanguage, HMMSpec, SyntheticDataModule
from lightning_tsdfm.metrics import OracleJudge

TINY = HMMSpec(vocab_size=4, num_states=3, branching=2, emissions_per_state=2, smoothing=0.05, seed=3)


def _brute_force_log_likelihood(lang: HiddenMarkovLanguage, tokens: list[int]) -> float:
    total = 0.0
    for states in itertools.product(range(lang.spec.num_states), repeat=len(tokens)):
        p = lang.initial[states[0]].item() * lang.emission[states[0], tokens[0]].item()
        for i in range(1, len(tokens)):
            p *= lang.transition[states[i - 1], states[i]].item() * lang.emission[states[i], tokens[i]].item()
        total += p
    return math.log(total)


specs = st.builds(
    HMMSpec,
    vocab_size=st.integers(2, 12),
    num_states=st.integers(2, 8),
    branching=st.just(2),
    emissions_per_state=st.integers(1, 2),
    smoothing=st.floats(0.001, 0.5),
    seed=st.integers(0, 1000),
)


@given(spec=specs)
def test_rows_are_distributions(spec):
    lang = HiddenMarkovLanguage(spec)
    assert lang.transition.shape == (spec.num_states, spec.num_states)
    assert lang.emission.shape == (spec.num_states, spec.vocab_size)
    for table in (lang.transition, lang.emission):
        assert table.dtype == torch.float64
        assert torch.allclose(table.sum(-1), torch.ones(table.shape[0], dtype=torch.float64), atol=1e-12)
        assert torch.all(table > 0)  # smoothing: every entry positive
    assert lang.initial.sum().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "spec",
    [
        HMMSpec(),
        HMMSpec(vocab_size=16, num_states=8, smoothing=0.01),
        TINY,
        # a nearly periodic chain (one successor per state, little smoothing): power iteration alone oscillates
        HMMSpec(vocab_size=4, num_states=4, branching=1, emissions_per_state=1, smoothing=0.001, seed=13),
    ],
    ids=["default", "small", "tiny", "near-periodic"],
)
def test_initial_distribution_is_stationary(spec):
    """`sample` starts "from the stationary state distribution": pi T = pi."""
    lang = HiddenMarkovLanguage(spec)
    assert torch.allclose(lang.initial @ lang.transition, lang.initial, atol=1e-6)


def test_rows_are_sparse_up_to_smoothing():
    spec = HMMSpec(vocab_size=16, num_states=8, branching=2, emissions_per_state=2, smoothing=0.01)
    lang = HiddenMarkovLanguage(spec)
    # exactly `branching` entries per row exceed the smoothing floor
    assert torch.all((lang.transition > 0.01 / 8 + 1e-12).sum(-1) == 2)
    assert torch.all((lang.emission > 0.01 / 16 + 1e-12).sum(-1) == 2)


def test_same_spec_same_language():
    a, b = HiddenMarkovLanguage(TINY), HiddenMarkovLanguage(HMMSpec(**TINY.to_dict()))
    assert torch.equal(a.transition, b.transition) and torch.equal(a.emission, b.emission)
    other = HiddenMarkovLanguage(HMMSpec(**{**TINY.to_dict(), "seed": 4}))
    assert not torch.equal(a.emission, other.emission)


def test_log_likelihood_matches_brute_force():
    lang = HiddenMarkovLanguage(TINY)
    sequences = [list(s) for s in itertools.product(range(4), repeat=3)]
    ll = lang.log_likelihood(torch.tensor(sequences))
    assert ll.shape == (64,) and ll.dtype == torch.float64
    for seq, value in zip(sequences, ll.tolist()):
        assert value == pytest.approx(_brute_force_log_likelihood(lang, seq), abs=1e-10)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_likelihood_sums_to_one(length):
    lang = HiddenMarkovLanguage(TINY)
    everything = torch.tensor(list(itertools.product(range(4), repeat=length)))
    assert lang.log_likelihood(everything).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


def test_samples_are_likely_and_in_vocabulary():
    spec = HMMSpec(vocab_size=16, num_states=8, smoothing=0.01)
    lang = HiddenMarkovLanguage(spec)
    samples = lang.sample(256, 12, torch.Generator().manual_seed(0))
    assert samples.shape == (256, 12) and samples.dtype == torch.long
    assert samples.min() >= 0 and samples.max() < 16
    assert torch.equal(samples, lang.sample(256, 12, torch.Generator().manual_seed(0)))
    # language samples are far more likely than uniform noise
    noise = torch.randint(0, 16, (256, 12), generator=torch.Generator().manual_seed(1))
    assert lang.log_likelihood(samples).mean() > lang.log_likelihood(noise).mean() + 5


@pytest.mark.parametrize("bad", [-1, 4, 100])
def test_out_of_vocabulary_is_rejected(bad):
    lang = HiddenMarkovLanguage(TINY)
    tokens = torch.zeros(2, 3, dtype=torch.long)
    tokens[1, 1] = bad
    with pytest.raises(ValueError, match="vocab"):
        lang.log_likelihood(tokens)


def test_true_perplexity_bounds():
    spec = HMMSpec(vocab_size=16, num_states=8, smoothing=0.01)
    lang = HiddenMarkovLanguage(spec)
    ppl, stderr = lang.true_perplexity(length=8, num_sequences=512)
    assert 1.0 < ppl < 16
    assert 0.0 < stderr < 0.1
    # a nearly deterministic language has a lower perplexity than a heavily smoothed one
    smooth = HiddenMarkovLanguage(HMMSpec(vocab_size=16, num_states=8, smoothing=0.9)).true_perplexity(8, 512)[0]
    assert ppl < smooth < 16


@pytest.mark.parametrize(
    "kwargs",
    [dict(branching=0), dict(branching=9, num_states=8), dict(emissions_per_state=0), dict(emissions_per_state=5, vocab_size=4),
     dict(smoothing=0.0), dict(smoothing=1.0)],
)
def test_spec_validation(kwargs):
    with pytest.raises(ValueError):
        HMMSpec(**kwargs)


def test_oracle_judge_counts_and_nll():
    judge = OracleJudge(TINY.to_dict())
    assert judge.name == "oracle" and judge.wants == "tokens"
    tokens = HiddenMarkovLanguage(TINY).sample(5, 7, torch.Generator().manual_seed(0))
    nll, count = judge.score(tokens)
    assert nll.shape == count.shape == (5,)
    assert torch.all(count == 7)
    assert torch.allclose(nll, -HiddenMarkovLanguage(TINY).log_likelihood(tokens))
    assert torch.all(nll > 0)


def test_synthetic_datamodule_card_and_batches():
    dm = SyntheticDataModule(vocab_size=16, num_states=8, seq_len=10, num_train=32, num_val=8, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (4, 10) and batch.dtype == torch.long
    assert batch.max() < 16
    card = dm.data_card()
    assert card["kind"] == "synthetic" and card["vocab_size"] == 16 and card["seq_len"] == 10
    assert OracleJudge(card["hmm"]).spec == dm.spec
    assert dm.decode(batch[:1])[0].split()[0] == f"t{int(batch[0, 0])}"
