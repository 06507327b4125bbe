"""Training times: i.i.d. or antithetic draws on [0, high), and the teacher's choice of whether its network sees t."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, tiny_synthetic

from lightning_tsdfm import StudentModule, TeacherModule
from lightning_tsdfm.time_draws import draw_times


@settings(max_examples=50, deadline=None)
@given(batch=st.integers(1, 64), high=st.floats(0.1, 1.0), seed=st.integers(0, 2**31 - 1))
def test_antithetic_times_cover_the_interval_evenly(batch, high, seed):
    t = draw_times(batch, torch.Generator().manual_seed(seed), "cpu", high, antithetic=True)
    assert t.shape == (batch,) and (t >= 0).all() and (t < high).all()
    gaps = torch.sort(t).values.diff()
    assert torch.allclose(gaps, torch.full_like(gaps, high / batch), atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(2, 64), seed=st.integers(0, 2**31 - 1))
def test_iid_times_are_the_generators_uniforms(batch, seed):
    t = draw_times(batch, torch.Generator().manual_seed(seed), "cpu", 0.5)
    assert torch.equal(t, torch.rand(batch, generator=torch.Generator().manual_seed(seed)) * 0.5)


def test_antithetic_teacher_draws_stratified_times():
    teacher = TeacherModule(TINY_VOCAB, TINY_LEN, backbone=TINY_TEACHER, antithetic=True)
    t, _ = teacher.path_sample(torch.zeros(8, TINY_LEN, dtype=torch.long), torch.Generator().manual_seed(0))
    assert torch.allclose(torch.sort(t).values.diff(), torch.full((7,), teacher.t_max / 8), atol=1e-5)


def test_untimed_teacher_ignores_t_and_its_student_inherits_it(tmp_path, randomize):
    teacher = randomize(TeacherModule(TINY_VOCAB, TINY_LEN, backbone=TINY_TEACHER, time_conditioning=False))
    assert teacher.net.time_embed is None
    x_t = torch.randint(0, TINY_VOCAB + 1, (3, TINY_LEN), generator=torch.Generator().manual_seed(1))
    assert torch.equal(teacher(x_t, torch.full((3,), 0.1)), teacher(x_t, torch.full((3,), 0.9)))
    timed = randomize(TeacherModule(TINY_VOCAB, TINY_LEN, backbone=TINY_TEACHER))
    assert not torch.equal(timed(x_t, torch.full((3,), 0.1)), timed(x_t, torch.full((3,), 0.9)))

    path = fit_checkpoint(teacher, tmp_path, 1, tiny_synthetic())
    student = StudentModule(str(path), TINY_VOCAB, TINY_LEN)
    teacher = TeacherModule.load_from_checkpoint(path)
    assert student.net.time_embed is None and student.net.step_embed is not None
    assert torch.allclose(student(x_t, torch.full((3,), 0.3), torch.full((3,), 0.25)),
                          teacher(x_t, torch.full((3,), 0.3)), atol=1e-5)  # a fresh student is its teacher
