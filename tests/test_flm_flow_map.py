"""The flow map of FLM's ODE: an Euler step is its convex form, and the semigroup weight lambda composes two flow-map
steps into one exactly, for any two-time denoisers."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from tsdfm_flm.flow_map import euler_step, flow_map, semigroup_target, semigroup_weight


def _gammas(draw_values: list[float], n: int) -> list[torch.Tensor]:
    ordered = sorted(draw_values)
    return [torch.tensor([g], dtype=torch.float64) for g in ordered[:n]]


def _simplex(shape, g) -> torch.Tensor:
    return torch.softmax(3 * torch.randn(*shape, generator=g, dtype=torch.float64), -1)


@given(st.lists(st.floats(0.0, 0.999), min_size=2, max_size=2), st.integers(1, 16), st.integers(0, 2**16))
def test_euler_step_equals_its_convex_form(gammas, vocab, seed):
    gamma_s, gamma_t = _gammas(gammas, 2)
    g = torch.Generator().manual_seed(seed)
    x, denoised = torch.randn(1, 3, vocab, generator=g, dtype=torch.float64), _simplex((1, 3, vocab), g)
    convex = (1 - gamma_t) / (1 - gamma_s) * x + (gamma_t - gamma_s) / (1 - gamma_s) * denoised
    assert torch.allclose(euler_step(x, denoised, gamma_s, gamma_t), convex, atol=1e-9)
    assert torch.allclose(flow_map(x, denoised, gamma_s, gamma_t), convex, atol=1e-9)


@given(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3), st.integers(2, 16), st.integers(0, 2**16))
def test_semigroup_weight_makes_the_composition_exact_for_random_denoisers(gammas, vocab, seed):
    gamma_s, gamma_u, gamma_t = _gammas(gammas, 3)
    if gamma_u.item() >= 1.0:  # the midpoint must lie before the data
        gamma_s, gamma_u = gamma_s * 0.99, gamma_u * 0.99
    g = torch.Generator().manual_seed(seed)
    weights_su, weights_ut = (torch.randn(vocab, vocab, generator=g, dtype=torch.float64) for _ in range(2))
    delta_su = lambda x: torch.softmax(x @ weights_su, -1)  # noqa: E731 - two arbitrary denoisers on the simplex
    delta_ut = lambda x: torch.softmax(x @ weights_ut, -1)  # noqa: E731
    x = torch.randn(1, 4, vocab, generator=g, dtype=torch.float64)
    midpoint = flow_map(x, delta_su(x), gamma_s, gamma_u)
    two_steps = flow_map(midpoint, delta_ut(midpoint), gamma_u, gamma_t)
    weight = semigroup_weight(gamma_s, gamma_u, gamma_t)
    one_step = flow_map(x, semigroup_target(delta_su(x), delta_ut(midpoint), weight), gamma_s, gamma_t)
    assert 0.0 <= weight.item() <= 1.0
    assert torch.allclose(one_step, two_steps, atol=1e-8)


@given(st.floats(0.0, 0.99), st.floats(0.0, 1.0))
def test_weight_is_zero_at_the_data_end(gamma_s, fraction):
    gamma_s = torch.tensor([gamma_s], dtype=torch.float64)
    gamma_u = gamma_s + fraction * (1 - gamma_s) * 0.999
    assert semigroup_weight(gamma_s, gamma_u, torch.ones(1, dtype=torch.float64)).item() == 0.0
