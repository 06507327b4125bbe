"""The endpoint target: unbiased for the two-half-step composition, and shaped by the midpoint it is given."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from lightning_tsdfm.distillation.trajectories import endpoint_target, heun_target
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source

V, L = 5, 3


def within_standard_errors(draws, expected, z: float = 4.5) -> bool:
    """The Monte-Carlo mean of ``draws`` [N, ...] lies within z standard errors of ``expected``. The one-hot half of
    the target is scaled by 1/c, so it is a rare jump of size up to s = max - min: a mean m made of such jumps has
    variance about m s / N, which also bounds a rare token seen 0 times (whose empirical variance is 0)."""
    n = draws.shape[0]
    event = (draws.amax(0) - draws.amin(0)).max()
    se = torch.maximum(draws.std(0), (expected.abs() * event).sqrt()) / n**0.5
    return bool(((draws.mean(0) - expected).abs() <= z * se + 1e-4).all())


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
    assert within_standard_errors(target.sum(-1)[moving], torch.tensor(1.0))
    for i in range(L):
        assert within_standard_errors(target[moving[:, i], i], k[0, i])
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


def _energy_table(seed: int, states: int) -> "callable":
    table = torch.randn(states, generator=torch.Generator().manual_seed(seed))
    return lambda x, t: table[x]


def _guided(policy: str, k: int, seed: int, generator_seed: int):
    from lightning_tsdfm.shaping import GuidedJump, make_selection

    jump = GuidedJump(_energy_table(seed, V + 1), k, make_selection(policy))
    jump.generator = torch.Generator().manual_seed(generator_seed)
    return jump


@settings(max_examples=6, deadline=None)
@given(source=st.sampled_from(["mask", "uniform"]), t=st.floats(0.0, 0.5), k=st.sampled_from([2, 4]),
       seed=st.integers(0, 2**16))
def test_averaging_over_the_candidates_keeps_the_mean_and_cuts_the_noise(source, t, k, seed):
    """Under the same Boltzmann-guided jump, the averaged target has the plain endpoint target's mean (the kept
    midpoint is drawn from the weights it averages with) and no more variance."""
    from lightning_tsdfm.distillation.trajectories import endpoint_averaged_target

    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source(source, V), PolynomialScheduler(1.0))
    probs = torch.softmax(torch.randn(1, L, V, generator=g), -1)
    n = 12000
    x_t = path.sample(torch.randint(0, V, (n, L), generator=g), torch.full((n,), t), g)
    times, steps = torch.full((n,), t), torch.full((n,), 0.5)
    targets = [f(constant_kernel(probs), _guided("boltzmann", k, seed, seed + i), path, x_t, times, steps,
                 torch.Generator().manual_seed(seed + 10 + i))
               for i, f in enumerate([endpoint_target, endpoint_averaged_target])]
    moving = path.source.unsettled(x_t)
    plain, averaged = (target[moving[:, 0], 0] for target in targets)
    se = (plain.var(0) / len(plain) + averaged.var(0) / len(averaged)).sqrt()  # independent draws
    assert ((plain.mean(0) - averaged.mean(0)).abs() <= 4.5 * se + 1e-4).all()
    assert (averaged.var(0) <= plain.var(0) * (1 + 4.5 * (2 / n) ** 0.5) + 1e-6).all()  # 4.5 SE of a variance


@pytest.mark.filterwarnings("error")  # a write into an expanded tensor (argmin's keep law) warns
@pytest.mark.parametrize("substeps", [2, 4])
def test_blind_and_argmin_averaged_targets_equal_the_endpoint_target_bit_for_bit(substeps):
    """One candidate (blind) or a deterministic choice (argmin): nothing to average, the same target; with four
    sub-steps and mixed step sizes too, where some sequences sit out the last midpoints."""
    from lightning_tsdfm.distillation.trajectories import endpoint_averaged_target

    path = MixturePath(make_source("mask", V))
    g = torch.Generator().manual_seed(0)
    k = torch.softmax(torch.randn(1, L, V, generator=g), -1)
    x_t = path.sample(torch.randint(0, V, (64, L), generator=g), torch.full((64,), 0.2), g)
    t, h = torch.full((64,), 0.2), torch.tensor([0.125, 0.25, 0.5, 0.25]).repeat(16)
    for make_jump in (BlindJump, lambda: _guided("argmin", 4, 1, 2)):
        plain, averaged = (f(constant_kernel(k), make_jump(), path, x_t, t, h, torch.Generator().manual_seed(3),
                             substeps=substeps, min_step=0.0625)
                           for f in (endpoint_target, endpoint_averaged_target))
        assert torch.equal(plain, averaged)


def test_a_jump_without_candidates_is_refused_for_the_averaged_target():
    from lightning_tsdfm.distillation.trajectories import endpoint_averaged_target

    path = MixturePath(make_source("mask", V))
    k = torch.full((1, L, V), 1.0 / V)
    x_t = torch.full((2, L), V)
    with pytest.raises(TypeError, match="hands over its candidates"):
        endpoint_averaged_target(constant_kernel(k), lambda *a, **kw: x_t, path, x_t, torch.zeros(2), torch.full((2,), 0.5))


@settings(max_examples=6, deadline=None)
@given(t=st.floats(0.0, 0.5), substeps=st.sampled_from([4, 8]), exponent=st.sampled_from([1.0, 2.0]),
       seed=st.integers(0, 2**16))
def test_more_substeps_keep_the_mean_at_the_kernel_when_the_kernel_is_constant(t, substeps, exponent, seed):
    """n sub-steps compose to one step like two halves do, so E[target] = k again; the step sizes are mixed so that
    some sequences take fewer midpoints (h / n below min_step) and sit out the last jumps."""
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source("mask", V), PolynomialScheduler(exponent))
    k = torch.softmax(torch.randn(1, L, V, generator=g), -1)
    n = 20000
    x_t = path.sample(torch.randint(0, V, (n, L), generator=g), torch.full((n,), t), g)
    steps = torch.tensor([0.125, 0.25, 0.5])[torch.randint(0, 3, (n,), generator=g)]
    target = endpoint_target(constant_kernel(k), BlindJump(), path, x_t, torch.full((n,), t), steps, g,
                             substeps=substeps, min_step=0.0625)
    moving = path.source.unsettled(x_t)
    assert within_standard_errors(target.sum(-1)[moving], torch.tensor(1.0))
    for i in range(L):
        assert within_standard_errors(target[moving[:, i], i], k[0, i])


@pytest.mark.parametrize("substeps", [2, 4, 8])
def test_shaped_midpoints_reach_all_but_the_last_substep(substeps):
    """Mask source, uniform kernel, midpoint jumps that reveal token 2 wherever they move: a position revealed by one
    of the n - 1 midpoints (probability c_m) carries e(2), one revealed over the last sub-step the kernel, so
    E[target_2] = (c_m + (c - c_m) / V) / c."""
    path = MixturePath(make_source("mask", V))
    blind = BlindJump()

    def reveal_two(x_t, probs, t, h, path, generator=None):
        return torch.where(blind.draw_moves(x_t, t, h, path, generator), 2, x_t)

    n = 40000
    g = torch.Generator().manual_seed(substeps)
    x_t, t, h = torch.full((n, L), V), torch.zeros(n), torch.full((n,), 0.5)
    target = endpoint_target(constant_kernel(torch.full((1, L, V), 1.0 / V)), reveal_two, path, x_t, t, h, g,
                             substeps=substeps)
    c = path.jump_probability(t[:1], h[:1])[0]
    c_m = path.jump_probability(t[:1], h[:1] * (substeps - 1) / substeps)[0]
    assert within_standard_errors(target[..., 2].reshape(-1, 1), ((c_m + (c - c_m) / V) / c).reshape(1))


def test_substeps_below_the_teachers_step_fall_back_to_one_midpoint_bit_for_bit():
    """h = 2 min_step leaves room for one midpoint only: four sub-steps give the two-sub-step target."""
    path = MixturePath(make_source("mask", V))
    g = torch.Generator().manual_seed(0)
    k = torch.softmax(torch.randn(1, L, V, generator=g), -1)
    x_t = path.sample(torch.randint(0, V, (64, L), generator=g), torch.full((64,), 0.2), g)
    t, h = torch.full((64,), 0.2), torch.full((64,), 0.125)
    two, four = (endpoint_target(constant_kernel(k), BlindJump(), path, x_t, t, h, torch.Generator().manual_seed(3),
                                 substeps=n, min_step=0.0625) for n in (2, 4))
    assert torch.equal(two, four)


@pytest.mark.parametrize("trajectory, substeps, match", [
    ("endpoint", 3, "power of two"), ("endpoint_averaged", 1, "power of two"), ("heun", 4, "endpoint targets only"),
])
def test_bad_substeps_are_refused(trajectory, substeps, match):
    from lightning_tsdfm.distillation import check_trajectory

    with pytest.raises(ValueError, match=match):
        check_trajectory(trajectory, "mask", substeps)


def test_the_last_midpoint_of_sub_steps_that_cross_the_shaping_window_is_one_law_over_k_candidates():
    """Sub-steps inside and outside ``shape_until`` in one target: every jump hands over K candidates whose keep
    probabilities sum to one, so the averaged target's first half weighs one state, not K copies of it."""
    from lightning_tsdfm.distillation.trajectories import _last_midpoint
    from lightning_tsdfm.paths import MixturePath, make_source
    from lightning_tsdfm.shaping import GuidedJump, make_selection

    vocab, length, batch, k = 6, 12, 16, 4
    g = torch.Generator().manual_seed(0)
    path = MixturePath(make_source("mask", vocab))
    t = torch.linspace(0.1, 0.3, batch)  # the sub-steps of 1/16 from each: some inside shape_until = 0.25, some not
    h = torch.full((batch,), 0.25)
    x_t = path.sample(torch.randint(0, vocab, (batch, length), generator=g), t, g)

    def posterior(x, tt, hh):
        return torch.softmax(torch.randn(*x.shape, vocab, generator=torch.Generator().manual_seed(1)), -1)

    jump = GuidedJump(lambda x, tt: x.float().sin(), k, make_selection("importance", shape_until=0.25))
    jump.generator = torch.Generator().manual_seed(2)
    last, _, _ = _last_midpoint(posterior, jump, path, x_t, t, h, g, substeps=4, min_step=0.0, averaged=True)
    assert last.states.shape == (k, batch, length)
    assert torch.allclose(last.keep_probabilities.sum(0), torch.ones(batch, length, dtype=last.keep_probabilities.dtype))
