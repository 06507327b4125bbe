"""sample_categorical and the blind jump of the mixture path."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.jumps import BlindJump, JumpPolicy, sample_categorical
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source

seeds = st.integers(min_value=0, max_value=2**31 - 1)
vocab_sizes = st.integers(min_value=2, max_value=12)


def _dirichlet(shape: tuple[int, ...], g: torch.Generator, zero_fraction: float = 0.0) -> torch.Tensor:
    w = -torch.log(torch.rand(shape, generator=g, dtype=torch.float64))
    if zero_fraction:
        drop = torch.rand(shape, generator=g) < zero_fraction
        keep_one = torch.zeros(shape, dtype=torch.bool)
        keep_one[..., 0] = True
        # never drop every entry of a row: keep a random survivor
        idx = torch.randint(0, shape[-1], shape[:-1], generator=g)
        keep_one = torch.nn.functional.one_hot(idx, shape[-1]).bool()
        w = torch.where(drop & ~keep_one, torch.zeros_like(w), w)
    return (w / w.sum(-1, keepdim=True)).float()


# ---------------------------------------------------------------- sample_categorical


@given(vocab=vocab_sizes, seed=seeds)
def test_sample_categorical_frequencies_match_probs(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    probs = _dirichlet((vocab,), g)
    n = 20_000
    draws = sample_categorical(probs.expand(n, vocab), g)
    assert draws.shape == (n,)
    counts = torch.bincount(draws, minlength=vocab).double()
    expected = probs.double() * n
    sigma = torch.sqrt(expected * (1 - probs.double()))
    assert torch.all((counts - expected).abs() <= 5 * sigma + 3), (counts, expected)
    # Pearson chi-square over the bins with enough mass, vs. a loose bound on its vocab-1 degrees of freedom
    big = expected > 5
    chi2 = ((counts[big] - expected[big]) ** 2 / expected[big]).sum().item()
    assert chi2 < 4 * vocab + 30


def test_sample_categorical_uniform_is_diverse():
    draws = sample_categorical(torch.full((4000, 8), 1 / 8), torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=8).double() / 4000
    assert torch.allclose(freq, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.03)


@given(vocab=vocab_sizes, seed=seeds)
def test_sample_categorical_never_picks_zero_probability(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    probs = _dirichlet((64, vocab), g, zero_fraction=0.6)
    draws = sample_categorical(probs, g)
    picked = probs.gather(-1, draws[:, None]).squeeze(-1)
    assert torch.all(picked > 0), probs[picked == 0]


def test_sample_categorical_one_hot_rows():
    probs = torch.nn.functional.one_hot(torch.tensor([3, 0, 5, 1]), 6).float()
    assert sample_categorical(probs, torch.Generator().manual_seed(0)).tolist() == [3, 0, 5, 1]


@given(seed=seeds)
def test_sample_categorical_reproducible(seed):
    probs = torch.full((2, 500, 6), 1 / 6)
    a = sample_categorical(probs, torch.Generator().manual_seed(seed))
    b = sample_categorical(probs, torch.Generator().manual_seed(seed))
    c = sample_categorical(probs, torch.Generator().manual_seed(seed + 1))
    assert a.shape == (2, 500)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # 1000 uniform draws over 6 ids: two seeds agree with probability 6^-1000


def test_sample_categorical_draws_float64_noise_by_default():
    probs = torch.full((3, 7), 1 / 7)
    g_default, g_64, g_ref = (torch.Generator().manual_seed(5) for _ in range(3))
    assert torch.equal(sample_categorical(probs, g_default), sample_categorical(probs, g_64, dtype=torch.float64))
    # the default consumes the generator exactly as one float64 uniform draw of the probs' shape
    torch.rand(probs.shape, dtype=torch.float64, generator=g_ref)
    assert torch.equal(g_default.get_state(), g_ref.get_state())
    assert BlindJump().dtype == torch.float64


# ---------------------------------------------------------------- BlindJump


def _mask_state(batch: int, length: int, vocab: int, g: torch.Generator, masked_fraction: float) -> torch.Tensor:
    x = torch.randint(0, vocab, (batch, length), generator=g)
    masked = torch.rand(batch, length, generator=g) < masked_fraction
    return torch.where(masked, torch.full_like(x, vocab), x)


@given(
    vocab=vocab_sizes,
    seed=seeds,
    masked_fraction=st.floats(min_value=0.0, max_value=1.0),
    t=st.floats(min_value=0.0, max_value=0.999),
    h=st.floats(min_value=1e-6, max_value=1.0),
    exponent=st.floats(min_value=0.25, max_value=4.0),
)
def test_blind_jump_mask_source_invariants(vocab, seed, masked_fraction, t, h, exponent):
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source("mask", vocab), PolynomialScheduler(exponent))
    x_t = _mask_state(3, 40, vocab, g, masked_fraction)
    probs = _dirichlet((3, 40, vocab), g, zero_fraction=0.5)
    x_next = BlindJump()(x_t, probs, torch.full((3,), t), torch.full((3,), h), path, g)
    revealed = x_t != vocab
    # revealed tokens stay revealed and unchanged
    assert torch.equal(x_next[revealed], x_t[revealed])
    # masked positions stay masked or move to a data token the kernel allows
    moved = (~revealed) & (x_next != vocab)
    assert torch.all((x_next >= 0) & (x_next <= vocab))
    assert torch.all(x_next[moved] < vocab)
    picked = probs.gather(-1, x_next.clamp_max(vocab - 1)[..., None]).squeeze(-1)
    assert torch.all(picked[moved] > 0)


@given(vocab=vocab_sizes, seed=seeds, steps=st.integers(min_value=1, max_value=5000))
def test_blind_jump_last_step_fills_everything(vocab, seed, steps):
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source("mask", vocab))
    x_t = _mask_state(2, 50, vocab, g, 0.9)
    probs = _dirichlet((2, 50, vocab), g)
    t = torch.full((2,), (steps - 1) / steps)
    h = torch.full((2,), 1.0 / steps)
    x_next = BlindJump()(x_t, probs, t, h, path, g)
    assert torch.all(x_next < vocab)


@given(seed=seeds, t=st.floats(min_value=0.0, max_value=0.9))
def test_blind_jump_overshooting_one_fills_everything(seed, t):
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source("mask", 6), PolynomialScheduler(2.0))
    x_t = _mask_state(2, 50, 6, g, 1.0)
    x_next = BlindJump()(x_t, torch.full((2, 50, 6), 1 / 6), torch.full((2,), t), torch.ones(2), path, g)
    assert torch.all(x_next < 6)


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
def test_blind_jump_tiny_step_moves_almost_nothing(source_name):
    g = torch.Generator().manual_seed(0)
    vocab = 8
    path = MixturePath(make_source(source_name, vocab))
    x_t = path.source.sample((4, 5000), g, "cpu")
    probs = torch.full((4, 5000, vocab), 1 / vocab)
    x_next = BlindJump()(x_t, probs, torch.full((4,), 0.3), torch.full((4,), 1e-7), path, g)
    assert (x_next != x_t).double().mean().item() < 1e-3


@given(vocab=vocab_sizes, seed=seeds, t=st.floats(min_value=0.0, max_value=0.999), h=st.floats(min_value=1e-6, max_value=1.0))
def test_blind_jump_uniform_source_stays_in_vocabulary(vocab, seed, t, h):
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source("uniform", vocab))
    x_t = path.source.sample((3, 40), g, "cpu")
    probs = _dirichlet((3, 40, vocab), g, zero_fraction=0.5)
    x_next = BlindJump()(x_t, probs, torch.full((3,), t), torch.full((3,), h), path, g)
    assert torch.all((x_next >= 0) & (x_next < vocab))
    changed = x_next != x_t
    picked = probs.gather(-1, x_next[..., None]).squeeze(-1)
    assert torch.all(picked[changed] > 0)


def test_blind_jump_is_a_jump_policy():
    assert isinstance(BlindJump(), JumpPolicy)
    assert isinstance(BlindJump(torch.float32), JumpPolicy)
    assert not isinstance(object(), JumpPolicy)
    assert "float64" in repr(BlindJump())


def test_blind_jump_reproducible():
    path = MixturePath(make_source("mask", 6))
    x_t = torch.full((2, 100), 6)
    probs = torch.full((2, 100, 6), 1 / 6)
    args = (x_t, probs, torch.full((2,), 0.2), torch.full((2,), 0.3), path)
    a = BlindJump()(*args, torch.Generator().manual_seed(3))
    b = BlindJump()(*args, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@given(
    seed=seeds,
    t=st.floats(min_value=0.0, max_value=0.95),
    h=st.floats(min_value=0.001, max_value=0.5),
    exponent=st.floats(min_value=0.25, max_value=4.0),
)
def test_blind_jump_moved_fraction_matches_path(seed, t, h, exponent):
    """Fraction of masked positions that move = (kappa(t+h) - kappa(t)) / (1 - kappa(t))."""
    vocab = 5
    g = torch.Generator().manual_seed(seed)
    sched = PolynomialScheduler(exponent)
    path = MixturePath(make_source("mask", vocab), sched)
    n = 20_000
    x_t = torch.full((2, n), vocab)
    probs = torch.full((2, n, vocab), 1 / vocab)
    x_next = BlindJump()(x_t, probs, torch.full((2,), t), torch.full((2,), h), path, g)
    t64, h64 = torch.tensor(t, dtype=torch.float64), torch.tensor(h, dtype=torch.float64)
    k_t, k_next = sched.kappa(t64), sched.kappa(torch.clamp(t64 + h64, max=1.0))
    expected = ((k_next - k_t) / (1 - k_t)).item()
    observed = (x_next != vocab).double().mean(dim=1)
    sigma = (expected * (1 - expected) / n) ** 0.5
    assert torch.all((observed - expected).abs() <= 6 * sigma + 1e-3), (observed, expected)
