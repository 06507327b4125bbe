"""The one-hot interpolant of FLM and its bridge to the discrete paths: per position, argmax x_gamma has the law of
the uniform-source mixture path at kappa = alpha(gamma)."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.paths import MixturePath, UniformSource
from tsdfm_flm.interpolant import OneHotGaussianPath, one_hot_interpolant


@given(st.integers(2, 32), st.floats(0.0, 1.0), st.integers(0, 2**16))
def test_interpolant_ends_at_noise_and_at_the_one_hot(vocab, gamma, seed):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, vocab, (2, 5), generator=g)
    noise = torch.randn(2, 5, vocab, generator=g)
    ends = one_hot_interpolant(x1, torch.tensor([0.0, 1.0]), noise)
    assert torch.equal(ends[0], noise[0])
    assert torch.equal(ends[1], torch.nn.functional.one_hot(x1[1], vocab).float())
    mid = one_hot_interpolant(x1, torch.tensor([gamma, gamma]), noise)
    assert torch.allclose(mid, (1 - gamma) * noise + gamma * torch.nn.functional.one_hot(x1, vocab), atol=1e-6)


def _offset_frequencies(tokens: torch.Tensor, x1: torch.Tensor, vocab: int) -> torch.Tensor:
    """Frequencies of (token - x1) mod V: index 0 is 'kept its data token', the others each wrong token."""
    return torch.bincount(((tokens - x1) % vocab).flatten(), minlength=vocab).double() / tokens.numel()


@given(st.integers(2, 24), st.floats(0.0, 1.0), st.integers(0, 2**16))
def test_argmax_of_x_gamma_is_the_uniform_mixture_path_at_kappa_alpha(vocab, tau, seed):
    flm = OneHotGaussianPath(vocab)
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, vocab, (400, 16), generator=g)
    taus = torch.full((400,), tau)
    argmax = flm.sample(x1, taus, g).argmax(-1)
    mixture = MixturePath(UniformSource(vocab)).sample(x1, flm.time.alpha(flm.gamma(taus)).float(), g)  # kappa(t) = t
    kappa = flm.time.alpha(flm.gamma(taus[:1])).item()
    exact = torch.full((vocab,), (1 - kappa) / vocab, dtype=torch.float64)
    exact[0] += kappa
    n = x1.numel()
    tolerance = 5 * (exact * (1 - exact) / n).sqrt() + 1e-3
    assert ((_offset_frequencies(argmax, x1, vocab) - exact).abs() < tolerance).all()
    assert ((_offset_frequencies(mixture, x1, vocab) - exact).abs() < tolerance).all()
