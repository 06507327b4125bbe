"""Selection policies and the guided jump: argmin is minimal, indifference keeps the blind draw, K = 1 and a
constant energy are the blind jump bit for bit, candidates share the blind move mask (through a denoiser's
probabilities or a next-state kernel)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lightning_tsdfm.jumps import BlindJump, mixture_kernel
from lightning_tsdfm.paths import MixturePath, make_source
from lightning_tsdfm.shaping import GuidedJump, make_selection
from lightning_tsdfm.shaping.selection import gather_candidates

POLICIES = ["argmin", "boltzmann", "importance", "sequence_to_token"]


def _energies(seed: int, k: int, b: int, n: int, distinct: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, b, n, generator=g) if distinct else torch.full((k, b, n), 0.3)


@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), b=st.integers(1, 5), n=st.integers(1, 6))
def test_argmin_never_keeps_a_higher_energy_candidate(seed, k, b, n):
    energies = _energies(seed, k, b, n)
    index = make_selection("argmin")(energies, torch.rand(b))
    chosen = gather_candidates(energies.mean(-1, keepdim=True).expand(-1, -1, n), index)[:, 0]
    assert (chosen[None] <= energies.mean(-1) + 1e-7).all()


@pytest.mark.parametrize("policy", POLICIES)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), b=st.integers(1, 5))
def test_constant_energy_keeps_candidate_zero(policy, seed, k, b):
    index = make_selection(policy, temperature=0.5)(_energies(seed, k, b, 4, distinct=False), torch.rand(b),
                                                     torch.Generator().manual_seed(seed), torch.randn(k, b))
    assert (index == 0).all()


@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), b=st.integers(1, 4), distinct=st.booleans())
def test_keep_probabilities_are_the_law_the_index_is_drawn_from(policy, seed, k, b, distinct):
    """[K, B, L], summing to one over K; a deterministic policy's is the one-hot of its index; the sampling
    policies' index frequencies follow them."""
    energies, t, log_proposal = _energies(seed, k, b, 3, distinct), torch.rand(b), torch.randn(k, b)
    selection = make_selection(policy, temperature=0.7)
    keep = selection.keep_probabilities(energies, t, log_proposal)
    assert keep.shape == (k, b, 3) and torch.allclose(keep.sum(0), torch.ones(b, 3, dtype=keep.dtype))
    # 4000 draws per sequence, as 200 calls on the batch repeated 20 times: the copies of a sequence are draws of one
    # call (rows draw independently), and successive calls draw anew from the advancing generator
    calls, copies = (200, 20) if policy in ("boltzmann", "importance") else (1, 1)
    counts = torch.zeros(k, b, 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    repeated = (energies.repeat(1, copies, 1), t.repeat(copies), log_proposal.repeat(1, copies))
    for _ in range(calls):
        index = selection(repeated[0], repeated[1], g, repeated[2]).expand(copies * b, 3)
        counts += torch.nn.functional.one_hot(index, k).permute(2, 0, 1).reshape(k, copies, b, 3).sum(1)
    assert torch.allclose(counts / (calls * copies), keep.double(), atol=0.035)


def test_boltzmann_follows_exp_minus_energy_over_temperature():
    energies = torch.tensor([0.0, 1.0, 2.0])[:, None, None].expand(3, 20_000, 1)
    index = make_selection("boltzmann", temperature=2.0)(energies, torch.zeros(20_000), torch.Generator().manual_seed(0))
    frequencies = torch.bincount(index[:, 0], minlength=3).double() / 20_000
    expected = torch.softmax(-torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64) / 2.0, 0)
    assert torch.allclose(frequencies, expected, atol=0.015)


def test_boltzmann_at_low_temperature_is_argmin():
    energies = _energies(3, 5, 64, 4)
    low = make_selection("boltzmann", temperature=1e-6)(energies, torch.zeros(64), torch.Generator().manual_seed(0))
    assert torch.equal(low, make_selection("argmin")(energies, torch.zeros(64)))


def test_sequence_to_token_switches_from_sequences_to_tokens():
    energies = _energies(4, 4, 2, 6)
    index = make_selection("sequence_to_token", switch_time=0.5)(energies, torch.tensor([0.2, 0.8]))
    assert (index[0] == energies[:, 0].mean(-1).argmin()).all()  # early: one candidate for the whole sequence
    assert torch.equal(index[1], energies[:, 1].argmin(0))  # late: per-token argmin


@pytest.mark.parametrize("name", ["nope", "Argmin"])
def test_unknown_policy_is_a_clear_error(name):
    with pytest.raises(ValueError, match="Unknown selection policy"):
        make_selection(name)


def test_boltzmann_needs_a_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        make_selection("boltzmann", temperature=0.0)


# ---- guided jump

V, L, B = 6, 10, 8


def _state(source: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source(source, V))
    x1 = torch.randint(0, V, (B, L), generator=g)
    t = torch.rand(B, generator=g) * 0.8
    x_t = path.sample(x1, t, g)
    probs = torch.softmax(torch.randn(B, L, V, generator=g) * 2, -1)
    return path, x_t, probs, t, torch.full((B,), 0.125)


def _sum_of_ids(x, t):  # energies that depend on the tokens: a compass with an opinion
    return x.float().sin()


@pytest.mark.parametrize("policy", ["argmin", "importance"])
@pytest.mark.parametrize("source", ["mask", "uniform"])
@pytest.mark.parametrize("k,energies", [(1, _sum_of_ids), (4, lambda x, t: torch.zeros(x.shape))])
@given(seed=st.integers(0, 10_000))
def test_one_candidate_or_constant_energy_is_the_blind_jump(policy, source, k, energies, seed):
    path, x_t, probs, t, h = _state(source, seed)
    guided = GuidedJump(energies, k, make_selection(policy))
    guided.generator = torch.Generator().manual_seed(seed + 1)
    blind = BlindJump()(x_t, probs, t, h, path, torch.Generator().manual_seed(seed))
    assert torch.equal(guided(x_t, probs, t, h, path, torch.Generator().manual_seed(seed)), blind)


@pytest.mark.parametrize("policy", POLICIES)
@given(seed=st.integers(0, 10_000))
def test_candidates_share_the_blind_moves_and_revealed_tokens_stay(policy, seed):
    path, x_t, probs, t, h = _state("mask", seed)
    guided = GuidedJump(_sum_of_ids, 5, make_selection(policy, switch_time=0.5))
    guided.generator = torch.Generator().manual_seed(seed + 1)
    shaped = guided(x_t, probs, t, h, path, torch.Generator().manual_seed(seed))
    blind = BlindJump()(x_t, probs, t, h, path, torch.Generator().manual_seed(seed))
    revealed = x_t != path.source.mask_id
    assert torch.equal(shaped[revealed], x_t[revealed])
    assert torch.equal(shaped == path.source.mask_id, blind == path.source.mask_id)


def test_guided_jump_prefers_low_energy_and_reports_it():
    path, x_t, probs, t, h = _state("uniform", 0)
    guided = GuidedJump(lambda x, tt: x.float(), 8, make_selection("argmin"))  # energy = token id: small ids win
    guided.generator = torch.Generator().manual_seed(1)
    shaped = guided(x_t, probs, t, torch.full((B,), 1.0), path, torch.Generator().manual_seed(0))
    blind = BlindJump()(x_t, probs, t, torch.full((B,), 1.0), path, torch.Generator().manual_seed(0))
    assert shaped.float().mean() < blind.float().mean()
    stats = guided.statistics.means()
    assert stats["energy_chosen"] < stats["energy_candidates"]
    assert 0.0 < stats["changed_fraction"] <= 1.0


def test_a_step_begins_with_its_generator_and_ends_with_its_statistics():
    """begin_step sets the candidates' generator and empties the statistics; end_step hands the step's over (jumps
    asked, selections, their means as the sums of the per-selection means) and leaves the next step's empty."""
    path, x_t, probs, t, h = _state("uniform", 0)
    guided = GuidedJump(lambda x, tt: x.float(), 4, make_selection("argmin"))
    guided.begin_step(torch.Generator().manual_seed(1))
    guided(x_t, probs, t, torch.full((B,), 1.0), path, torch.Generator().manual_seed(0))
    guided(x_t, probs, t, torch.full((B,), 1.0), path, torch.Generator().manual_seed(2))
    assert guided.calls == 2
    statistics = guided.end_step()
    assert statistics.calls == 2 and statistics.jumps == 2 and guided.calls == 0 and guided.statistics.jumps == 0
    chosen, candidates, changed = zip(*[[value.item() for value in selection] for selection in statistics._selections])
    assert statistics.means() == {"energy_chosen": (0.0 + chosen[0] + chosen[1]) / 2,
                                  "energy_candidates": (0.0 + candidates[0] + candidates[1]) / 2,
                                  "changed_fraction": (0.0 + changed[0] + changed[1]) / 2}
    generator = torch.Generator().manual_seed(3)
    guided.begin_step(generator)
    assert guided.generator is generator and guided.end_step().means() == {
        "energy_chosen": 0.0, "energy_candidates": 0.0, "changed_fraction": 0.0}


@pytest.mark.parametrize("source", ["mask", "uniform"])
@pytest.mark.parametrize("window", ["late", "early"])
def test_a_jump_outside_the_shaping_window_is_the_blind_jump_without_a_compass_forward(source, window):
    path, x_t, probs, t, h = _state(source, 0)  # 0 < t < 0.8

    def no_compass(x, tt):
        raise AssertionError("scored a jump that starts outside the shaping window")

    ends = dict(shape_from=0.9) if window == "late" else dict(shape_until=float(t.min()))
    guided = GuidedJump(no_compass, 4, make_selection("argmin", **ends))
    guided.generator = torch.Generator().manual_seed(1)
    blind = BlindJump()(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
    assert torch.equal(guided(x_t, probs, t, h, path, torch.Generator().manual_seed(0)), blind)
    kept = guided.draw_candidates(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
    assert torch.equal(kept.kept, blind) and (kept.states == blind).all() and kept.states.shape[0] == 4  # K copies
    assert (kept.keep_probabilities[0] == 1).all() and (kept.keep_probabilities[1:] == 0).all()
    kernel = mixture_kernel(x_t, probs.double(), t, h, path)
    assert torch.equal(guided.transition(x_t, kernel, t, h, torch.Generator().manual_seed(0)),
                       BlindJump().transition(x_t, kernel, t, h, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("policy", POLICIES)
def test_times_of_shape_b_1_or_one_step_size_are_the_times_of_shape_b(policy):
    """t and h as MDLM's sampler passes them, [B, 1] (and h as one number), give the jump of t and h of shape [B],
    through the denoiser's probabilities and through a next-state kernel."""
    path, x_t, probs, t, h = _state("mask", 0)
    kernel = mixture_kernel(x_t, probs.double(), t, h, path)

    def jumps(t, h):
        guided = GuidedJump(_sum_of_ids, 4, make_selection(policy))
        guided.generator = torch.Generator().manual_seed(1)
        drawn = guided.draw_candidates(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
        guided.generator = torch.Generator().manual_seed(1)
        moved = guided(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
        guided.generator = torch.Generator().manual_seed(1)
        return drawn.kept, moved, guided.transition(x_t, kernel, t, h, torch.Generator().manual_seed(0))

    for expected, given in zip(jumps(t, h), jumps(t[:, None], 0.125)):
        assert torch.equal(expected, given)
    for expected, given in zip(jumps(t, h), jumps(t[:, None], h[:, None])):
        assert torch.equal(expected, given)
    blind = BlindJump()(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
    assert torch.equal(BlindJump()(x_t, probs, t[:, None], h[:, None], path, torch.Generator().manual_seed(0)), blind)
    with pytest.raises(ValueError, match=r"t must have shape \[B\] or \[B, 1\] for B = 8"):
        GuidedJump(_sum_of_ids, 4, make_selection(policy))(x_t, probs, t[:3], h, path)


def test_nan_energies_are_a_clear_error():
    path, x_t, probs, t, h = _state("mask", 0)
    guided = GuidedJump(lambda x, tt: torch.full(x.shape, float("nan")), 2, make_selection("argmin"))
    with pytest.raises(FloatingPointError, match="NaN"):
        guided(x_t, probs, t, h, path)


# ---- guided transitions (next-state kernels of other model families, e.g. SEDD)

@pytest.mark.parametrize("policy", ["argmin", "importance"])
@pytest.mark.parametrize("source", ["mask", "uniform"])
@pytest.mark.parametrize("k,energies", [(1, _sum_of_ids), (4, lambda x, t: torch.zeros(x.shape))])
@given(seed=st.integers(0, 10_000))
def test_one_candidate_or_constant_energy_is_the_blind_transition(policy, source, k, energies, seed):
    path, x_t, probs, t, h = _state(source, seed)
    kernel = mixture_kernel(x_t, probs.double(), t, h, path)
    guided = GuidedJump(energies, k, make_selection(policy))
    guided.generator = torch.Generator().manual_seed(seed + 1)
    blind = BlindJump().transition(x_t, kernel, t, h, torch.Generator().manual_seed(seed))
    assert torch.equal(guided.transition(x_t, kernel, t, h, torch.Generator().manual_seed(seed)), blind)


def _candidates_of_transition(x_t, kernel, t, h, k: int, seed: int = 0) -> torch.Tensor:
    """The K candidate states [K, B, L] that a guided transition hands its energy."""
    seen = []

    def recording(x, tt):
        seen.append(x.clone())
        return x.float().sin()

    guided = GuidedJump(recording, k, make_selection("argmin"))
    guided.generator = torch.Generator().manual_seed(seed + 1)
    guided.transition(x_t, kernel, t, h, torch.Generator().manual_seed(seed))
    return seen[0].reshape(k, *x_t.shape)


@pytest.mark.parametrize("source", ["mask", "uniform"])
@given(seed=st.integers(0, 10_000))
def test_candidates_of_a_transition_share_the_moved_positions(source, seed):
    """Through a next-state kernel the K candidates move where candidate 0, the blind transition, moved: on a mask
    kernel the same positions are revealed in all of them, so the kept state follows the schedule."""
    path, x_t, probs, t, h = _state(source, seed)
    kernel = mixture_kernel(x_t, probs.double(), t, h, path)
    candidates = _candidates_of_transition(x_t, kernel, t, h, 6, seed)
    moved = candidates != x_t
    assert torch.equal(candidates[0], BlindJump().transition(x_t, kernel, t, h, torch.Generator().manual_seed(seed)))
    assert (moved == moved[0]).all()


@pytest.mark.parametrize("row,state", [([0.3, 0.2, 0.1, 0.0, 0.4], 4), ([0.1, 0.2, 0.5, 0.2], 2)],
                         ids=["mask", "uniform"])
def test_each_candidate_of_a_transition_is_a_draw_of_the_kernel(row, state):
    """P(candidate k = y) = q(y) for every k: candidate 0 moves with probability 1 - q(x_t), and the others then
    draw y != x_t with probability q(y) / (1 - q(x_t))."""
    n = 20_000
    kernel = torch.tensor(row, dtype=torch.float64).expand(n, 1, -1)
    x_t = torch.full((n, 1), state)
    candidates = _candidates_of_transition(x_t, kernel, torch.zeros(n), torch.full((n,), 0.5), 4)
    for k in range(4):
        frequencies = torch.bincount(candidates[k, :, 0], minlength=len(row)).double() / n
        assert torch.allclose(frequencies, torch.tensor(row, dtype=torch.float64), atol=0.015), (k, frequencies)


def test_guided_transition_keeps_a_kernel_draw_of_low_energy():
    path, x_t, probs, t, _ = _state("mask", 0)
    h = 1.0 - t  # a step to the end: every masked position is drawn
    kernel = mixture_kernel(x_t, probs.double(), t, h, path)
    guided = GuidedJump(lambda x, tt: x.float(), 8, make_selection("argmin"))  # energy = token id
    guided.generator = torch.Generator().manual_seed(1)
    shaped = guided.transition(x_t, kernel, t, h, torch.Generator().manual_seed(0))
    blind = BlindJump().transition(x_t, kernel, t, h, torch.Generator().manual_seed(0))
    assert (kernel.gather(-1, shaped[..., None]) > 0).all()  # every kept token is a possible draw
    assert shaped.float().mean() < blind.float().mean()
    assert guided.statistics.means()["energy_chosen"] < guided.statistics.means()["energy_candidates"]


@pytest.mark.parametrize("source", ["mask", "uniform"])
def test_a_batch_split_by_the_window_scores_only_the_sequences_inside_and_keeps_the_others_blind(source):
    path, x_t, probs, t, h = _state(source, 0)  # 0 < t < 0.8
    until = float(t.median())
    inside = t < until
    scored_rows = []

    def counting(x, tt):
        scored_rows.append(len(x))
        return _sum_of_ids(x, tt)

    guided = GuidedJump(counting, 4, make_selection("argmin", shape_until=until))
    guided.generator = torch.Generator().manual_seed(1)
    blind = BlindJump()(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
    kept = guided(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
    assert scored_rows == [4 * int(inside.sum())]  # K candidates of the sequences inside the window, one forward
    assert torch.equal(kept[~inside], blind[~inside])
    drawn = guided.draw_candidates(x_t, probs, t, h, path, torch.Generator().manual_seed(0))
    assert torch.equal(drawn.kept[~inside], blind[~inside]) and (drawn.states[:, ~inside] == blind[~inside]).all()
    assert (drawn.keep_probabilities[0, ~inside] == 1).all() and (drawn.keep_probabilities[1:, ~inside] == 0).all()
    assert torch.allclose(drawn.keep_probabilities[:, inside].sum(0), torch.ones(1, dtype=drawn.keep_probabilities.dtype))


@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 5), b=st.integers(1, 6), ends=st.tuples(st.floats(0.0, 1.0),
                                                                                         st.floats(0.0, 1.0)))
def test_jumps_outside_the_shaping_window_keep_the_blind_draw(policy, seed, k, b, ends):
    """t < shape_from or t >= shape_until: candidate 0 and a one-hot law on it; inside the window: the policy's own
    choice, drawn with the same random stream as a policy that shapes every jump."""
    shape_from, shape_until = sorted(ends)
    assume(shape_from < shape_until)
    energies, t, log_proposal = _energies(seed, k, b, 3), torch.rand(b), torch.randn(k, b)
    window = make_selection(policy, temperature=0.7, shape_from=shape_from, shape_until=shape_until)
    everywhere = make_selection(policy, temperature=0.7)
    index = window(energies, t, torch.Generator().manual_seed(seed), log_proposal)
    own = everywhere(energies, t, torch.Generator().manual_seed(seed), log_proposal)
    outside = (t < shape_from) | (t >= shape_until)
    assert (index[outside] == 0).all() and torch.equal(index[~outside], own[~outside])
    keep = window.keep_probabilities(energies, t, log_proposal)
    assert (keep[0, outside] == 1).all() and (keep[1:, outside] == 0).all()
    assert torch.equal(keep[:, ~outside], everywhere.keep_probabilities(energies, t, log_proposal)[:, ~outside])


@pytest.mark.parametrize("shape_from", [-0.1, 1.5])
def test_shape_from_outside_the_unit_interval_is_refused(shape_from):
    with pytest.raises(ValueError, match="shape_from must lie in"):
        make_selection("argmin", shape_from=shape_from)
