"""The endpoint target: unbiased for the two-half-step composition, and shaped by the midpoint it is given."""

import torch
from hypothesis import given, settings, strategies as st

from lightning_tsdfm.distillation.trajectories import endpoint_target, heun_target
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source

V, L = 5, 3


def constant_kernel(probs):
    return lambda x, t, h: probs.expand(*x.shape, V)


@settings(max_examples=8, deadline=None)
@given(source=st.sampled_from(["mask", "uniform"]), t=st.floats(0.0, 0.6), h=st.sampled_from([0.125, 0.25, 0.5]),
       exponent=st.sampled_from([1.0, 2.0]), seed=st.integers(0, 2**16))
def test_mean_is_the_kernel_when_the_kernel_is_constant(source, t, h, exponent, seed):
    """With p(x1 | x) = k for every x, one step and two half steps agree, so E[target] = k (and Heun gives k)."""
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source(source, V), PolynomialScheduler(exponent))
    k = torch.softmax(torch.randn(1, L, V, generator=g), -1)
    n = 20000
    x_t = path.sample(torch.randint(0, V, (n, L), generator=g), torch.full((n,), t), g)
    times, steps = torch.full((n,), t), torch.full((n,), h)
    target = endpoint_target(constant_kernel(k), BlindJump(), path, x_t, times, steps, g)
    moving = path.source.unsettled(x_t)
    assert torch.allclose(target.sum(-1)[moving].mean(), torch.tensor(1.0), atol=0.02)
    for i in range(L):
        assert torch.allclose(target[moving[:, i], i].mean(0), k[0, i], atol=0.03)
    assert torch.allclose(heun_target(constant_kernel(k), BlindJump(), path, x_t, times, steps, g), k.expand(n, L, V))


def test_a_chosen_midpoint_shapes_the_first_half():
    """Mask source, a midpoint jump that always reveals token 2: the revealed positions' target is e(2) / c
    scaled by what the second half cannot add, where Heun keeps the kernel's k1 at half weight."""
    path = MixturePath(make_source("mask", V))
    k = torch.full((1, L, V), 1.0 / V)

    def reveal_two(x_t, probs, t, h, path, generator=None):
        return torch.full_like(x_t, 2)

    x_t = torch.full((4, L), V)
    t, h = torch.zeros(4), torch.full((4,), 0.5)
    target = endpoint_target(constant_kernel(k), reveal_two, path, x_t, t, h)
    c = path.jump_probability(t, h)[0]
    expected = torch.zeros(V)
    expected[2] = 1.0 / c
    assert torch.allclose(target, expected.expand(4, L, V))
    assert heun_target(constant_kernel(k), reveal_two, path, x_t, t, h)[0, 0, 2] < 0.7
