"""Importance selection: the path's noising probability is a distribution, and K candidates resampled with
weights p_{t+h}(x) p(x_t | x) / q(x | x_t) draw the data path's reverse kernel, where argmin does not."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.data import HiddenMarkovLanguage, HMMSpec
from lightning_tsdfm.data.path_oracle import OracleCompass, PathOracle
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source
from lightning_tsdfm.shaping import GuidedJump, make_selection

LANGUAGE = HMMSpec(vocab_size=3, num_states=2, branching=1, emissions_per_state=1, smoothing=0.1, seed=1)
LEN = 3


@given(source=st.sampled_from(["mask", "uniform"]), t=st.floats(0.0, 0.9), gap=st.floats(0.01, 1.0),
       exponent=st.sampled_from([1.0, 2.0]), seed=st.integers(0, 1000))
def test_noising_probabilities_sum_to_one_over_the_earlier_state(source, t, gap, exponent, seed):
    path = MixturePath(make_source(source, 3), PolynomialScheduler(exponent))
    later = torch.tensor([min(t + gap, 1.0)], dtype=torch.float64)
    x_later = path.sample(torch.randint(0, 3, (1, LEN), generator=torch.Generator().manual_seed(seed)), later)
    states = torch.tensor(list(itertools.product(range(path.source.input_vocab_size), repeat=LEN)))  # every x_t
    log_p = path.log_noising(x_later.expand(len(states), -1)[:, None], states[:, None], torch.tensor([t]), later)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-9)


def test_noising_a_revealed_token_to_the_mask():
    path = MixturePath(make_source("mask", 3))  # kappa(t) = t: keep with 0.25 / 0.5, else mask
    x_later, x_t = torch.tensor([[0, 1, 3]]), torch.tensor([[0, 3, 3]])
    log_p = path.log_noising(x_later, x_t, torch.tensor([0.25]), torch.tensor([0.5]))
    assert log_p.item() == pytest.approx(float(torch.log(torch.tensor(0.5 * 0.5 * 1.0))))


def _reverse_kernel(oracle: PathOracle, x_t: torch.Tensor, t: float, s: float) -> dict[tuple, float]:
    """p(x_s | x_t) = p_s(x_s) p(x_t | x_s) / p_t(x_t) over every state x_s, by enumeration."""
    states = torch.tensor(list(itertools.product(range(oracle.path.source.input_vocab_size), repeat=LEN)))
    times = torch.full((len(states),), s, dtype=torch.float64)
    log_joint = oracle.log_terms(states, times).sum(-1) + oracle.path.log_noising(
        states, x_t.expand(len(states), -1), torch.full((len(states),), t, dtype=torch.float64), times)
    probs = torch.softmax(log_joint.nan_to_num(nan=float("-inf")), 0)  # impossible states: NaN or -inf
    return {tuple(x.tolist()): p.item() for x, p in zip(states, probs) if p > 0}


def _total_variation(draws: torch.Tensor, law: dict[tuple, float]) -> float:
    keys, counts = draws.unique(dim=0, return_counts=True)
    empirical = {tuple(k.tolist()): c.item() / len(draws) for k, c in zip(keys, counts)}
    return 0.5 * sum(abs(empirical.get(k, 0.0) - law.get(k, 0.0)) for k in set(empirical) | set(law))


@pytest.mark.parametrize("t, h, x_t", [(0.0, 1.0, [3, 3, 3]), (0.3, 0.4, [3, 1, 3])])
def test_importance_selection_draws_the_reverse_kernel_from_a_wrong_proposal(t, h, x_t):
    lang = HiddenMarkovLanguage(LANGUAGE)
    path = MixturePath(make_source("mask", lang.vocab_size))
    oracle = PathOracle(lang, path)
    compass = OracleCompass(oracle, LEN)
    n, x = 6000, torch.tensor([x_t]).expand(6000, -1)
    wrong = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64).expand(n, LEN, -1)  # a teacher far too flat
    law = _reverse_kernel(oracle, torch.tensor([x_t]), t, t + h)
    times, steps = torch.full((n,), t, dtype=torch.float64), torch.full((n,), h, dtype=torch.float64)

    def draws(policy: str, k: int) -> torch.Tensor:
        jump = GuidedJump(compass.energies, k, make_selection(policy))
        jump.generator = torch.Generator().manual_seed(1)
        return jump(x, wrong, times, steps, path, torch.Generator().manual_seed(0))

    blind, importance, argmin = draws("importance", 1), draws("importance", 64), draws("argmin", 64)
    corrected = _total_variation(importance, law)
    assert corrected < 0.04
    assert _total_variation(blind, law) > 0.3  # the proposal alone is far off ...
    assert _total_variation(argmin, law) > 3 * corrected  # ... and argmin sharpens instead of correcting


def test_importance_selection_needs_the_proposal():
    with pytest.raises(ValueError, match="proposal"):
        make_selection("importance")(torch.randn(3, 2, 4), torch.rand(2))
