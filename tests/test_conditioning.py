"""Conditional sampling: known tokens are never changed by the library's samplers, blind or guided.

The property is checked over random templates (which positions are known, which tokens they hold) for the teacher
and the student of each source (ancestral, first-hitting), MDLM (ancestral, cached), SEDD (both graphs, both
samplers), FLM and FMLM (continuous states, clamped one-hots) and the OPDLM student (confidence decoding, and its
causal teacher); the posterior and kernel clamps are checked on their own, so a guided jump's candidates differ only
where nothing is known.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB

from lightning_tsdfm.conditioning import ConditionedJump, Given
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules import StudentModule, TeacherModule
from lightning_tsdfm.paths import MixturePath, make_source
from lightning_tsdfm.shaping import GuidedJump, make_selection

from conftest import randomize_

V, L = TINY_VOCAB, TINY_LEN
ROWS = 3
EXAMPLES = settings(max_examples=6)


@st.composite
def templates(draw) -> Given:
    """ROWS rows of L positions, each known with a drawn probability, holding drawn tokens."""
    seed = draw(st.integers(0, 2**16))
    share = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    g = torch.Generator().manual_seed(seed)
    return Given(torch.randint(0, V, (ROWS, L), generator=g), torch.rand(ROWS, L, generator=g) < share)


def keeps(module, given_: Given, seed: int, steps: int = 4, **kwargs) -> None:
    """``module``'s samples conditioned on ``given_`` (in chunks of 2 sequences) are token ids holding the known
    tokens."""
    samples = module.sample(ROWS, steps, generator=torch.Generator().manual_seed(seed), batch_size=2, given=given_,
                            **kwargs)
    assert samples.shape == (ROWS, L) and samples.dtype == torch.long
    assert int(samples.min()) >= 0 and int(samples.max()) < V
    assert given_.kept(samples), "a known token changed"


def guided(seed: int = 0) -> GuidedJump:
    """K = 4 candidates a jump, the lowest of a random per-(position, state) energy kept."""
    table = torch.randn(L, V + 1, generator=torch.Generator().manual_seed(seed))
    energies = lambda x, t: table[torch.arange(x.shape[-1]), x]  # noqa: E731 - per-token energies [N, L]
    return GuidedJump(energies, 4, make_selection("argmin"), generator=torch.Generator().manual_seed(seed + 1))


# ---- the clamps themselves

@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_the_posterior_is_the_known_token_where_one_is_known(known: Given, seed: int):
    probs = torch.softmax(torch.randn(ROWS, L, V, generator=torch.Generator().manual_seed(seed)), -1)
    clamped = known.posterior(probs)
    assert torch.allclose(clamped.sum(-1), torch.ones(ROWS, L))
    assert torch.equal(clamped[known.known].argmax(-1), known.tokens[known.known])
    assert torch.equal(clamped[known.known].max(-1).values, torch.ones(int(known.known.sum())))
    assert torch.equal(clamped[~known.known], probs[~known.known])


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_a_guided_jumps_candidates_agree_on_the_known_tokens(known: Given, seed: int):
    """Uniform source: every position may move, yet under the clamped posterior all K candidates hold the known
    tokens, so the compass chooses among fillings only."""
    g = torch.Generator().manual_seed(seed)
    path = MixturePath(make_source("uniform", V))
    x_t = known.impose(torch.randint(0, V, (ROWS, L), generator=g))
    probs = torch.softmax(torch.randn(ROWS, L, V, generator=g), -1)
    t, h = torch.full((ROWS,), 0.25), torch.full((ROWS,), 0.25)
    candidates, _, _ = guided(seed).propose(x_t, known.posterior(probs), t, h, path, g)
    assert len(candidates) == 4
    for state in candidates:
        assert known.kept(state)


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_a_conditioned_kernel_stays_at_the_known_tokens(known: Given, seed: int):
    g = torch.Generator().manual_seed(seed)
    x_t = known.impose(torch.randint(0, V, (ROWS, L), generator=g))
    kernel = torch.softmax(torch.randn(ROWS, L, V, generator=g), -1)
    for jump in (BlindJump(temperature=0.7), guided(seed)):
        assert known.kept(jump.transition(x_t, known.kernel(kernel, x_t), 0.5, 0.25, g))
        assert known.kept(ConditionedJump(jump, known).transition(x_t, kernel, 0.5, 0.25, g))


def test_given_refuses_a_mismatch():
    with pytest.raises(ValueError, match="one shape"):
        Given(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool))
    teacher = TeacherModule(V, L, backbone=TINY_TEACHER)
    with pytest.raises(ValueError, match="one row of seq_len positions per sample"):
        teacher.sample(2, 2, given=Given.nothing(3, L))


# ---- every family keeps them

@pytest.fixture(scope="module")
def teacher(source):
    return randomize_(TeacherModule(V, L, source=source, backbone=TINY_TEACHER)).eval()


@EXAMPLES
@given(templates(), st.integers(0, 100), st.sampled_from([0.7, 1.0]))
def test_teacher_keeps_the_known_tokens(teacher, known: Given, seed: int, temperature: float):
    for sampler in teacher.samplers:
        if sampler == "first_hitting" and teacher.path.source.name != "mask":
            continue
        keeps(teacher, known, seed, sampler=sampler, jump=BlindJump(temperature=temperature))


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_guided_sampling_keeps_the_known_tokens(teacher, known: Given, seed: int):
    keeps(teacher, known, seed, jump=guided(seed))


@pytest.fixture(scope="module")
def student(teacher_ckpt):
    return randomize_(StudentModule(str(teacher_ckpt), V, L)).eval()


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_student_keeps_the_known_tokens(student, known: Given, seed: int):
    keeps(student, known, seed, steps=2)
    keeps(student, known, seed, steps=3, step_sizes=[0.25, 0.25, 0.5], jump=guided(seed))
