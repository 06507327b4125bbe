"""The sampling temperature of every sampler: T = 1 is the plain draw bit for bit, and T tempers p^(1/T)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.jumps import BlindJump, sample_categorical, temper, temper_moves
from lightning_tsdfm.metrics import unigram_entropy
from lightning_tsdfm.paths import MixturePath, make_source
from lightning_tsdfm.sampling import denoiser_step, sample_chain


def _probs(seed: int, shape=(3, 5, 7)) -> torch.Tensor:
    return torch.softmax(torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 2, -1).double()


@given(seed=st.integers(0, 10_000), source=st.sampled_from(["mask", "uniform"]))
def test_temperature_one_is_the_plain_draw_bit_for_bit(seed, source):
    probs = _probs(seed)
    path = MixturePath(make_source(source, 7))
    x_t = path.sample(torch.randint(0, 7, (3, 5), generator=torch.Generator().manual_seed(seed)), torch.full((3,), 0.3))
    t, h = torch.full((3,), 0.3), torch.full((3,), 0.25)
    plain, tempered = BlindJump(), BlindJump(temperature=1.0)
    draws = [jump(x_t, probs, t, h, path, torch.Generator().manual_seed(seed)) for jump in (plain, tempered)]
    assert torch.equal(*draws)
    kernel = torch.softmax(torch.randn(3, 5, path.source.input_vocab_size, generator=torch.Generator().manual_seed(seed)), -1)
    by_hand = sample_categorical(kernel, torch.Generator().manual_seed(seed))  # the draw as the library made it so far
    assert torch.equal(tempered.transition(x_t, kernel, t, h, torch.Generator().manual_seed(seed)), by_hand)


@given(seed=st.integers(0, 10_000), temperature=st.floats(0.2, 5.0))
def test_tempered_probabilities_are_p_to_the_one_over_t(seed, temperature):
    probs = _probs(seed)
    tempered = temper(probs, temperature)
    expected = probs ** (1 / temperature)
    assert torch.allclose(tempered, expected / expected.sum(-1, keepdim=True), atol=1e-10)


@given(seed=st.integers(0, 10_000), temperature=st.floats(0.2, 5.0))
def test_tempered_kernel_keeps_the_stay_probability(seed, temperature):
    kernel = _probs(seed)
    x_t = torch.randint(0, 7, (3, 5), generator=torch.Generator().manual_seed(seed))
    tempered = temper_moves(kernel, x_t, temperature)
    assert torch.allclose(tempered.sum(-1), torch.ones(3, 5, dtype=torch.float64))
    assert torch.equal(tempered.gather(-1, x_t[..., None]), kernel.gather(-1, x_t[..., None]))
    settled = torch.nn.functional.one_hot(x_t, 7).double()  # nothing to move: no NaN, the state stays
    assert torch.equal(temper_moves(settled, x_t, temperature), settled)


def test_draws_follow_the_tempered_distribution():
    probs = torch.tensor([[[0.6, 0.3, 0.1]]], dtype=torch.float64).expand(1, 40_000, 3)
    x_t = torch.full((1, 40_000), 3)
    path = MixturePath(make_source("mask", 3))
    draws = BlindJump(temperature=0.5)(x_t, probs, torch.zeros(1), torch.ones(1), path, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws[0], minlength=3).double() / 40_000
    assert torch.allclose(freq, torch.tensor([36, 9, 1], dtype=torch.float64) / 46, atol=0.01)


def test_lower_temperature_lowers_the_entropy_of_samples():
    logits = torch.randn(7, generator=torch.Generator().manual_seed(0)) * 2  # the same distribution at every position
    path = MixturePath(make_source("mask", 7))

    def entropy(temperature: float) -> float:
        step = denoiser_step(lambda x, t, h: logits.expand(*x.shape, -1), path, BlindJump(temperature=temperature))
        tokens = sample_chain(step, path.source.sample, 256, 16, 4, torch.Generator().manual_seed(0))
        return unigram_entropy(tokens).mean().item()

    assert entropy(0.5) < entropy(1.0) < entropy(2.0)


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature"):
        BlindJump(temperature=0.0)
