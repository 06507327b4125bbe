"""FLM's decoding-error time tau = alpha(gamma): the float64 table against its quadrature, its inverse, its endpoints
and monotonicity, and a Monte-Carlo estimate of the argmax accuracy it is built from."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tsdfm_flm.decoding_error_time import alpha_exact, argmax_accuracy, decoding_error_time

VOCABS = st.sampled_from([2, 16, 64, 2048, 50257])
UNIT = st.floats(0.0, 1.0)


@pytest.mark.parametrize("vocab", [2, 16, 64, 2048, 50257])
def test_endpoints_are_pinned(vocab):
    time = decoding_error_time(vocab)
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert time.alpha(ends).tolist() == [0.0, 1.0]
    assert time.gamma(ends).tolist() == [0.0, 1.0]


@given(VOCABS, st.lists(UNIT, min_size=2, max_size=50))
def test_both_maps_are_monotone(vocab, points):
    time = decoding_error_time(vocab)
    x = torch.tensor(sorted(points), dtype=torch.float64)
    assert (time.alpha(x).diff() >= 0).all() and (time.gamma(x).diff() >= 0).all()
    assert (time._alpha_grid.diff() > 0).all() and (time._gamma_grid.diff() > 0).all()


@given(VOCABS, UNIT)
def test_round_trip_tau_gamma_tau_is_below_1e_4(vocab, tau):
    time = decoding_error_time(vocab)
    tau = torch.tensor([tau], dtype=torch.float64)
    assert (time.alpha(time.gamma(tau)) - tau).abs().item() < 1e-4


@given(VOCABS, st.floats(0.0, 0.999))
def test_round_trip_gamma_tau_gamma_where_alpha_is_not_saturated(vocab, gamma):
    time = decoding_error_time(vocab)
    gamma = torch.tensor([gamma], dtype=torch.float64)
    if time.alpha(gamma).item() < 1 - 1e-6:  # beyond, alpha is flat to float64 and gamma is not identifiable
        assert (time.gamma(time.alpha(gamma)) - gamma).abs().item() < 1e-4


@given(VOCABS, UNIT)
def test_table_agrees_with_the_quadrature(vocab, gamma):
    gamma = torch.tensor([gamma], dtype=torch.float64)
    exact = alpha_exact(gamma, vocab).clamp(0, 1)
    assert (decoding_error_time(vocab).alpha(gamma) - exact).abs().item() < 1e-4


def test_values_of_the_recipe():
    """V = 2048: alpha = 0.5 near gamma = 0.775, alpha(0.8) = 0.703; V = 64 rises over a wider band."""
    big, small = decoding_error_time(2048), decoding_error_time(64)
    assert abs(big.gamma(torch.tensor([0.5])).item() - 0.775) < 0.005
    assert abs(alpha_exact(torch.tensor([0.8]), 2048).item() - 0.703) < 0.001
    assert small.gamma(torch.tensor([0.01])).item() < 0.25 < 0.5 < big.gamma(torch.tensor([0.01])).item()


@pytest.mark.parametrize("vocab,gamma", [(16, 0.2), (16, 0.45), (64, 0.6), (2048, 0.8)])
def test_accuracy_agrees_with_a_monte_carlo_estimate(vocab, gamma):
    """P(argmax((1 - gamma) eps + gamma e_k) = k), drawn, within 4 standard errors of the quadrature's q."""
    draws = 20_000
    g = torch.Generator().manual_seed(vocab)
    eps = torch.randn(draws, vocab, generator=g, dtype=torch.float64)
    x = (1 - gamma) * eps
    x[:, 0] += gamma
    hits = (x.argmax(-1) == 0).double()
    q = argmax_accuracy(torch.tensor(gamma), vocab).item()
    stderr = max((q * (1 - q) / draws) ** 0.5, 1e-4)
    assert abs(hits.mean().item() - q) < 4 * stderr
