"""Losses: masked cross-entropy and the generalized KL of the mixture path."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.losses import generalized_kl, masked_cross_entropy
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def test_masked_cross_entropy_matches_manual_value():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], [[0.0, 3.0, 0.0], [1.0, -2.0, 0.0]]])
    x1 = torch.tensor([[0, 2], [1, 1]])
    weight = torch.tensor([[True, False], [True, True]])
    log_p = torch.log_softmax(logits, -1)
    nll = [-log_p[0, 0, 0], -log_p[1, 0, 1], -log_p[1, 1, 1]]
    expected = sum(v.item() for v in nll) / 3
    assert masked_cross_entropy(logits, x1, weight).item() == pytest.approx(expected, rel=1e-6)
    # explicit numbers: -log softmax([2, 0, -1])[0]
    assert (-log_p[0, 0, 0]).item() == pytest.approx(-2.0 + math.log(math.exp(2) + 1 + math.exp(-1)), rel=1e-6)


def test_masked_cross_entropy_float_weights_and_empty_weight():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g)
    x1 = torch.randint(0, 7, (3, 5), generator=g)
    weight = torch.rand(3, 5, generator=g)
    nll = -torch.log_softmax(logits, -1).gather(-1, x1[..., None]).squeeze(-1)
    expected = (nll * weight).sum() / weight.sum()
    assert torch.allclose(masked_cross_entropy(logits, x1, weight), expected, rtol=1e-6)
    # all-ones weight is the plain mean cross-entropy
    plain = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x1.flatten())
    assert torch.allclose(masked_cross_entropy(logits, x1, torch.ones(3, 5, dtype=torch.bool)), plain, rtol=1e-6)
    # nothing to predict: zero, not NaN
    assert masked_cross_entropy(logits, x1, torch.zeros(3, 5, dtype=torch.bool)).item() == 0.0


def test_masked_cross_entropy_bf16_logits_computed_in_float32():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 6, generator=g)
    x1 = torch.randint(0, 6, (2, 4), generator=g)
    w = torch.ones(2, 4)
    loss = masked_cross_entropy(logits.bfloat16(), x1, w)
    assert loss.dtype == torch.float32
    assert torch.allclose(loss, masked_cross_entropy(logits.bfloat16().float(), x1, w))


def _random_case(source_name: str, vocab: int, seed: int, t_value: float, scale: float):
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source(source_name, vocab), PolynomialScheduler(1.0 + (seed % 3)))
    x1 = torch.randint(0, vocab, (3, 10), generator=g)
    logits = torch.randn(3, 10, vocab, generator=g) * scale
    t = torch.full((3,), t_value)
    x_t = path.sample(x1, t, g)
    return path, logits, x1, x_t, t


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
@given(
    vocab=st.integers(min_value=2, max_value=16),
    seed=seeds,
    t_value=st.floats(min_value=0.0, max_value=0.99),
    scale=st.floats(min_value=0.01, max_value=30.0),
)
def test_generalized_kl_is_non_negative(source_name, vocab, seed, t_value, scale):
    path, logits, x1, x_t, t = _random_case(source_name, vocab, seed, t_value, scale)
    loss = generalized_kl(logits, x1, x_t, t, path)
    assert loss.shape == x1.shape
    assert torch.isfinite(loss).all()
    assert loss.min().item() >= -1e-6


@given(vocab=st.integers(min_value=2, max_value=16), seed=seeds, t_value=st.floats(min_value=0.0, max_value=0.99))
def test_generalized_kl_mask_source_closed_form(vocab, seed, t_value):
    path, logits, x1, x_t, t = _random_case("mask", vocab, seed, t_value, 3.0)
    loss = generalized_kl(logits, x1, x_t, t, path)
    sched = path.scheduler
    lam = (sched.d_kappa(t) / (1 - sched.kappa(t)))[:, None].expand_as(loss)
    p_x1 = torch.softmax(logits, -1).gather(-1, x1[..., None]).squeeze(-1)
    masked = x_t == vocab
    assert torch.allclose(loss[masked], (lam * -torch.log(p_x1))[masked], rtol=1e-4, atol=1e-5)
    assert torch.allclose(loss[~masked], (lam * (1 - p_x1))[~masked], rtol=1e-4, atol=1e-5)


def test_generalized_kl_uniform_source_closed_form():
    vocab = 6
    path = MixturePath(make_source("uniform", vocab))
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 5, vocab, generator=g)
    x1 = torch.tensor([[0, 1, 2, 3, 4], [5, 5, 5, 5, 5]])
    x_t = torch.tensor([[0, 2, 2, 1, 0], [5, 0, 1, 5, 2]])
    t = torch.tensor([0.25, 0.5])
    lam = (1.0 / (1 - t))[:, None]  # kappa = t: kappa' / (1 - kappa) = 1 / (1 - t)
    p = torch.softmax(logits, -1)
    p_x1 = p.gather(-1, x1[..., None]).squeeze(-1)
    p_xt = p.gather(-1, x_t[..., None]).squeeze(-1)
    same = x_t == x1
    expected = torch.where(same, lam * (1 - p_x1), lam * (-p_xt - torch.log(p_x1)))
    assert torch.allclose(generalized_kl(logits, x1, x_t, t, path), expected, rtol=1e-5, atol=1e-6)


def test_generalized_kl_perfect_denoiser_is_zero():
    vocab = 9
    path = MixturePath(make_source("mask", vocab))
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, vocab, (4, 12), generator=g)
    t = torch.tensor([0.0, 0.3, 0.6, 0.9])
    x_t = path.sample(x1, t, g)
    logits = torch.nn.functional.one_hot(x1, vocab).float() * 1e4
    loss = generalized_kl(logits, x1, x_t, t, path)
    masked = x_t == vocab
    assert masked.any()
    assert loss[masked].abs().max().item() < 1e-6
    assert loss.abs().max().item() < 1e-6
    # and a wrong confident prediction is heavily penalised at masked positions
    wrong = torch.nn.functional.one_hot((x1 + 1) % vocab, vocab).float() * 10
    assert generalized_kl(wrong, x1, x_t, t, path)[masked].min().item() > 5.0


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
@pytest.mark.parametrize("loss", ["ce", "gkl"])
def test_teacher_training_step_is_finite_with_carry_over(source_name, loss):
    """The teacher's logits pin revealed tokens with -inf entries: losses and gradients must stay finite."""
    from lightning_tsdfm.models import TransformerConfig
    from lightning_tsdfm.modules import TeacherModule

    torch.manual_seed(0)
    backbone = TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, cond_size=32)
    teacher = TeacherModule(8, 8, source=source_name, loss=loss, backbone=backbone)
    teacher.log = lambda *args, **kwargs: None  # no trainer attached
    x1 = torch.randint(0, 8, (6, 8), generator=torch.Generator().manual_seed(1))
    value = teacher.training_step(x1, 0)
    assert torch.isfinite(value)
    value.backward()
    grads = [p.grad for p in teacher.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)
    # and the NELBO of the teacher's (carried-over) logits is zero at revealed positions of a mask path
    t = torch.full((6,), 0.7)
    x_t = teacher.path.sample(x1, t, torch.Generator().manual_seed(2))
    with torch.no_grad():
        per_position = generalized_kl(teacher(x_t, t), x1, x_t, t, teacher.path)
    assert torch.isfinite(per_position).all()
    if source_name == "mask":
        revealed = x_t != 8
        assert revealed.any()
        assert per_position[revealed].abs().max().item() == 0.0
