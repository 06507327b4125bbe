"""Mixture paths: marginals, supports, endpoints, the scheduler, jump probabilities and input validation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.paths import MaskSource, MixturePath, PolynomialScheduler, Scheduler, UniformSource, make_source

exponents = st.floats(min_value=0.25, max_value=4.0)
vocab_sizes = st.integers(min_value=2, max_value=40)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
times = st.floats(min_value=0.0, max_value=1.0)


def _make_path(source_name: str, vocab: int, exponent: float) -> MixturePath:
    return MixturePath(make_source(source_name, vocab), PolynomialScheduler(exponent))


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
@given(vocab=vocab_sizes, exponent=exponents, ts=st.lists(times, min_size=3, max_size=3), seed=seeds)
def test_marginal_fraction_equal_to_x1(source_name, vocab, exponent, ts, seed):
    """P(x_t^i = x1^i) = kappa(t) + (1 - kappa(t)) * P_source(x1^i)."""
    g = torch.Generator().manual_seed(seed)
    length = 20_000
    x1 = torch.randint(0, vocab, (3, length), generator=g)
    t = torch.tensor(ts, dtype=torch.float32)
    path = _make_path(source_name, vocab, exponent)
    x_t = path.sample(x1, t, g)
    kappa = path.scheduler.kappa(t).double()
    p_source = 0.0 if source_name == "mask" else 1.0 / vocab
    expected = kappa + (1 - kappa) * p_source
    observed = (x_t == x1).double().mean(dim=1)
    sigma = torch.sqrt(expected * (1 - expected) / length)
    assert torch.all((observed - expected).abs() <= 6 * sigma + 1e-3), (observed, expected)


@given(vocab=vocab_sizes, t=times, seed=seeds)
def test_mask_source_gives_only_x1_or_mask(vocab, t, seed):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, vocab, (4, 64), generator=g)
    path = _make_path("mask", vocab, 1.0)
    x_t = path.sample(x1, torch.full((4,), t), g)
    assert path.source.mask_id == vocab
    assert torch.all((x_t == x1) | (x_t == vocab))
    assert x_t.dtype == torch.long and x_t.shape == x1.shape


@given(vocab=vocab_sizes, t=times, seed=seeds)
def test_uniform_source_stays_in_vocabulary(vocab, t, seed):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, vocab, (4, 64), generator=g)
    path = _make_path("uniform", vocab, 1.0)
    x_t = path.sample(x1, torch.full((4,), t), g)
    assert x_t.min() >= 0 and x_t.max() < vocab


def test_uniform_source_is_uniform():
    source = UniformSource(5)
    draws = source.sample((50_000,), torch.Generator().manual_seed(0), "cpu")
    freq = torch.bincount(draws, minlength=5).double() / draws.numel()
    assert torch.allclose(freq, torch.full((5,), 0.2, dtype=torch.float64), atol=0.01)
    assert source.input_vocab_size == 5 and source.mask_id is None


def test_mask_source_ids():
    source = MaskSource(7)
    assert source.input_vocab_size == 8
    assert torch.all(source.sample((2, 3)) == 7)
    x = torch.tensor([[0, 7, 3, 7]])
    assert source.unsettled(x).tolist() == [[False, True, False, True]]
    assert UniformSource(7).unsettled(x).all()


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
@given(vocab=vocab_sizes, exponent=exponents, seed=seeds)
def test_endpoints(source_name, vocab, exponent, seed):
    """t=0 gives a pure source draw, t=1 gives x1."""
    x1 = torch.randint(0, vocab, (3, 32), generator=torch.Generator().manual_seed(seed + 1))
    path = _make_path(source_name, vocab, exponent)
    x_0 = path.sample(x1, torch.zeros(3), torch.Generator().manual_seed(seed))
    # the source draw comes first from the generator, so a same-seed source draw is the expected x0
    expected = path.source.sample(tuple(x1.shape), torch.Generator().manual_seed(seed), "cpu")
    assert torch.equal(x_0, expected)
    x_1 = path.sample(x1, torch.ones(3), torch.Generator().manual_seed(seed))
    assert torch.equal(x_1, x1)


def test_mixed_times_per_row():
    x1 = torch.randint(0, 5, (2, 200), generator=torch.Generator().manual_seed(0))
    path = _make_path("mask", 5, 1.0)
    x_t = path.sample(x1, torch.tensor([0.0, 1.0]), torch.Generator().manual_seed(0))
    assert torch.all(x_t[0] == 5)
    assert torch.equal(x_t[1], x1[1])


@given(exponent=exponents)
def test_scheduler_endpoints_and_monotone(exponent):
    sched = PolynomialScheduler(exponent)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    kappa = sched.kappa(t)
    assert kappa[0].item() == 0.0
    assert kappa[-1].item() == 1.0
    assert torch.all(kappa[1:] >= kappa[:-1])
    assert torch.all((kappa >= 0) & (kappa <= 1))


@given(exponent=exponents, t=st.floats(min_value=0.05, max_value=0.95))
def test_d_kappa_matches_finite_differences(exponent, t):
    sched = PolynomialScheduler(exponent)
    eps = 1e-6
    tt = torch.tensor([t - eps, t, t + eps], dtype=torch.float64)
    k = sched.kappa(tt)
    finite = (k[2] - k[0]) / (2 * eps)
    assert math.isclose(sched.d_kappa(tt[1:2]).item(), finite.item(), rel_tol=1e-5, abs_tol=1e-8)


@given(exponent=exponents, t=st.floats(min_value=0.0, max_value=1.0), h=st.floats(min_value=0.0, max_value=1.0))
def test_jump_probability_in_unit_interval(exponent, t, h):
    path = _make_path("mask", 4, exponent)
    p = path.jump_probability(torch.tensor([t]), torch.tensor([h]))
    assert torch.isfinite(p).all()
    assert 0.0 <= p.item() <= 1.0


@given(exponent=exponents, t=st.floats(min_value=0.0, max_value=1.0), h=st.floats(min_value=0.0, max_value=1.0))
def test_jump_probability_is_one_at_the_end(exponent, t, h):
    t_, h_ = torch.tensor([t]), torch.tensor([h])
    path = _make_path("uniform", 4, exponent)
    p = path.jump_probability(t_, h_)
    if (t_ + h_).item() >= 1.0:
        assert p.item() == 1.0
    else:
        k = path.scheduler.kappa
        expected = (k(t_ + h_) - k(t_)) / (1 - k(t_))
        assert torch.allclose(p, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 10, 64, 1000, 1024])
def test_jump_probability_one_on_the_last_sampling_step(steps):
    """The sampler's last step, t=(steps-1)/steps and h=1/steps in float32, must have jump probability 1."""
    path = _make_path("mask", 4, 1.0)
    t = torch.full((1,), (steps - 1) / steps)
    h = torch.full((1,), 1.0 / steps)
    assert path.jump_probability(t, h).item() == 1.0


class _CosineScheduler:
    """kappa(t) = 1 - cos(pi t / 2): a schedule that is not polynomial, written only against the protocol."""

    def kappa(self, t):
        return 1 - torch.cos(math.pi / 2 * t)

    def d_kappa(self, t):
        return math.pi / 2 * torch.sin(math.pi / 2 * t)


def test_polynomial_and_custom_schedulers_are_schedulers():
    assert isinstance(PolynomialScheduler(2.0), Scheduler) and isinstance(_CosineScheduler(), Scheduler)
    assert not isinstance(object(), Scheduler)
    assert MixturePath(MaskSource(4)).scheduler == PolynomialScheduler(1.0)


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
@given(vocab=vocab_sizes, ts=st.lists(times, min_size=3, max_size=3), seed=seeds)
def test_any_scheduler_sets_the_marginal(source_name, vocab, ts, seed):
    """MixturePath takes any Scheduler: P(x_t^i = x1^i) = kappa(t) + (1 - kappa(t)) * P_source(x1^i)."""
    g = torch.Generator().manual_seed(seed)
    length = 20_000
    x1 = torch.randint(0, vocab, (3, length), generator=g)
    t = torch.tensor(ts, dtype=torch.float32)
    path = MixturePath(make_source(source_name, vocab), _CosineScheduler())
    kappa = _CosineScheduler().kappa(t).double()
    expected = kappa + (1 - kappa) * (0.0 if source_name == "mask" else 1.0 / vocab)
    observed = (path.sample(x1, t, g) == x1).double().mean(dim=1)
    sigma = torch.sqrt(expected * (1 - expected) / length)
    assert torch.all((observed - expected).abs() <= 6 * sigma + 1e-3), (observed, expected)


@pytest.mark.parametrize("exponent", [0.0, -1.0, -0.5])
def test_scheduler_rejects_non_positive_exponent(exponent):
    with pytest.raises(ValueError, match="exponent"):
        PolynomialScheduler(exponent)


@pytest.mark.parametrize("t_shape", [(), (3, 1), (4,), (1,)])
def test_sample_rejects_wrong_t_shape(t_shape):
    path = _make_path("mask", 4, 1.0)
    x1 = torch.zeros(3, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="shape"):
        path.sample(x1, torch.zeros(t_shape))


@pytest.mark.parametrize("name", ["gaussian", "Mask", "", "absorbing"])
def test_make_source_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="mask"):
        make_source(name, 4)


def test_make_source_known_names():
    assert isinstance(make_source("mask", 3), MaskSource)
    assert isinstance(make_source("uniform", 3), UniformSource)


@given(vocab=vocab_sizes, seed=seeds, t=times)
def test_mask_source_carry_over_pins_revealed_tokens(vocab, seed, t):
    """SUBS: at a revealed position p(x1 | x_t) is a point mass on x_t; masked positions keep the model's logits."""
    g = torch.Generator().manual_seed(seed)
    path = _make_path("mask", vocab, 1.0)
    x1 = torch.randint(0, vocab, (3, 16), generator=g)
    x_t = path.sample(x1, torch.full((3,), t), g)
    logits = torch.randn(3, 16, vocab, generator=g)
    out = path.source.carry_over(logits, x_t)
    assert out.shape == logits.shape
    masked = x_t == vocab
    assert torch.equal(out[masked], logits[masked])
    probs = torch.softmax(out, -1)
    revealed = ~masked
    expected = torch.nn.functional.one_hot(x_t[revealed], vocab).float()
    assert torch.equal(probs[revealed], expected)


def test_uniform_source_carry_over_is_identity():
    logits = torch.randn(2, 5, 4)
    x_t = torch.randint(0, 4, (2, 5))
    assert torch.equal(UniformSource(4).carry_over(logits, x_t), logits)
