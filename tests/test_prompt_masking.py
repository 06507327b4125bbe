"""Prompt-masked training: known sets of the stated law, held in x_t at every t, in every state of the student's
target trajectories and in its input; the losses count only the positions to fill; share 0 is the old training bit
for bit; a share outside [0, 1] is refused."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, tiny_synthetic

from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.errors import UserError, user_message
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.losses import forward_kl, generalized_kl, masked_cross_entropy
from lightning_tsdfm.modules import StudentModule, TeacherModule
from lightning_tsdfm.paths import MixturePath, make_source
from lightning_tsdfm.prompt_masking import PromptMasking

V, L, B = TINY_VOCAB, TINY_LEN, 6
EXAMPLES = settings(max_examples=10)


def _batch(seed: int, rows: int = B) -> torch.Tensor:
    return torch.randint(0, V, (rows, L), generator=torch.Generator().manual_seed(seed))


def _teacher(source: str = "mask", **kwargs) -> TeacherModule:
    torch.manual_seed(0)
    return TeacherModule(V, L, source=source, backbone=TINY_TEACHER, **kwargs)


def _student(teacher_ckpt, **kwargs) -> StudentModule:
    torch.manual_seed(0)
    return StudentModule(str(teacher_ckpt), V, L, teacher_steps=8, **kwargs)


class MovesEverything(BlindJump):
    """A jump that changes every token, known ones included: what the conditioning must overrule."""

    def __call__(self, x_t, probs, t, h, path, generator=None):
        return (x_t + 1) % V


# ---- the law of the known sets, and x_t

@EXAMPLES
@given(seed=st.integers(0, 2**16), share=st.sampled_from([0.3, 0.5, 1.0]), t=st.floats(0.0, 1.0),
       source=st.sampled_from(["mask", "uniform"]),
       kinds=st.sampled_from([("prefix",), ("infill",), ("prefix", "infill")]))
def test_known_positions_hold_their_data_token_in_x_t_at_any_t(seed, share, t, source, kinds):
    g = torch.Generator().manual_seed(seed)
    x1 = _batch(seed + 1)
    path = MixturePath(make_source(source, V))
    x_t = path.sample(x1, torch.full((B,), t), g)
    held, known = PromptMasking(share, kinds).condition(x1, x_t, g)
    assert torch.equal(held[known.known], x1[known.known])
    assert torch.equal(held[~known.known], x_t[~known.known])
    for row in known.known:
        if not row.any():
            continue
        assert 1 <= int(row.sum()) <= L - 1  # something known, something to fill
        to_fill = torch.nonzero(~row).flatten()
        assert int(to_fill[-1] - to_fill[0]) + 1 == len(to_fill)  # one span to fill: a prefix or a head and tail
        if kinds == ("prefix",):
            assert int(to_fill[-1]) == L - 1
    if share == 1.0:
        assert known.known.any(-1).all()


def test_share_zero_draws_nothing_and_share_one_picks_every_sequence():
    g = torch.Generator().manual_seed(0)
    x1 = _batch(0)
    x_t = torch.full_like(x1, V)
    assert PromptMasking(0.0).condition(x1, x_t, g) == (x_t, None)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(0)))
    many = _batch(1, 4000)
    known = PromptMasking(1.0).draw(many, g).known
    assert known.any(-1).all()
    prefix = known[:, 0] & ~known[:, -1]  # a prompt, or an infill whose span reaches the end
    assert 0.45 < prefix.float().mean() < 0.75  # about 1/2 + 1/2 * E[1 / (L - m + 1)]


@EXAMPLES
@given(seed=st.integers(0, 2**16), share=st.sampled_from([0.5, 1.0]), source=st.sampled_from(["mask", "uniform"]))
def test_the_teachers_input_holds_the_known_tokens(seed, share, source):
    teacher = _teacher(source, prompt_masking=share, seed=seed)
    x1 = _batch(seed)
    inputs = []
    teacher.forward = lambda x_t, t, h=None, z=None: inputs.append(x_t) or torch.zeros(*x_t.shape, V)
    teacher.training_step(x1, 0)
    g = teacher.step_generator("cpu")  # the training step's draws, again
    _, x_t = teacher.path_sample(x1, g)
    known = teacher.prompt_masking.draw(x1, g)
    assert torch.equal(inputs[0], known.impose(x_t))


# ---- the losses

def _fixed_logits(seed: int) -> torch.Tensor:
    return torch.randn(B, L, V, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("loss", ["ce", "gkl"])
def test_the_teachers_loss_ignores_the_known_positions(loss):
    """Uniform source (a known position would count as unsettled): the loss is the mean over the positions to fill,
    and the logits at a known position do not change it."""
    teacher = _teacher("uniform", prompt_masking=1.0, loss=loss)
    x1 = _batch(3)
    g = teacher.step_generator("cpu")
    t, x_t = teacher.path_sample(x1, g)
    known = teacher.prompt_masking.draw(x1, g)
    x_t = known.impose(x_t)
    logits = _fixed_logits(0)
    teacher.forward = lambda x, t, h=None, z=None: logits
    value = teacher.training_step(x1, 0)
    to_fill = ~known.known
    if loss == "ce":
        per_position = F.cross_entropy(logits.flatten(0, 1), x1.flatten(), reduction="none").view(B, L)
    else:
        per_position = generalized_kl(logits, x1, x_t, t, teacher.path)
    assert math.isclose(float(value), float(per_position[to_fill].mean()), rel_tol=1e-6)
    logits = logits.masked_fill(known.known[..., None], 0.0) + 5.0 * known.known[..., None] * torch.arange(V)
    assert torch.equal(teacher.training_step(x1, 0), value)
    logits = logits.clone()
    logits[to_fill] += torch.arange(V, dtype=torch.float) * 3.0
    assert not torch.equal(teacher.training_step(x1, 0), value)


def test_the_students_loss_ignores_the_known_positions_and_its_input_holds_them(teacher_ckpt):
    student = _student(teacher_ckpt, prompt_masking=1.0)
    x1 = _batch(4)
    seen = {}
    target = torch.softmax(torch.randn(B, L, V, generator=torch.Generator().manual_seed(1)), -1)

    def distillation_target(x_t, t, h, is_base, generator, given=None):
        seen.update(x_t=x_t, given=given)
        return target

    student.distillation_target = distillation_target
    logits = _fixed_logits(2)
    inputs = []
    student.forward = lambda x, t, h=None, z=None: inputs.append(x) or logits
    value = student.training_step(x1, 0)
    known = seen["given"]
    assert torch.equal(inputs[0], seen["x_t"]) and known.kept(inputs[0])
    positions = student.path.source.unsettled(seen["x_t"]) & ~known.known
    assert torch.equal(value, forward_kl(target, logits, positions))
    logits = torch.where(known.known[..., None], torch.randn(B, L, V), logits)
    assert torch.equal(student.training_step(x1, 0), value)


# ---- share 0 is the old training, bit for bit

@pytest.mark.parametrize("loss", ["ce", "gkl"])
def test_share_zero_is_the_old_teacher_loss_bit_for_bit(source, loss):
    teacher = _teacher(source, loss=loss)
    x1 = _batch(5)
    g = teacher.step_generator("cpu")
    t, x_t = teacher.path_sample(x1, g)
    logits = teacher(x_t, t)
    old = (masked_cross_entropy(logits, x1, teacher.path.source.unsettled(x_t)) if loss == "ce"
           else generalized_kl(logits, x1, x_t, t, teacher.path).mean())
    assert torch.equal(teacher.training_step(x1, 0), old)


def test_share_zero_is_the_old_student_loss_bit_for_bit(teacher_ckpt):
    student = _student(teacher_ckpt)
    x1 = _batch(6)
    g = student.step_generator("cpu")
    t, h, is_base = student.steps.sample(B, g)
    x_t = student.path.sample(x1, t, g)
    target = student.distillation_target(x_t, t, h, is_base, g)
    old = forward_kl(target, student(x_t, t, h), student.path.source.unsettled(x_t))
    assert torch.equal(student.training_step(x1, 0), old)


# ---- the student's target trajectories keep the known positions

def _recording_posterior(student, states: list):
    posterior = student.ema_posterior

    def record(x, t, h, generator=None):
        states.append(x.clone())
        return posterior(x, t, h, generator)

    return record


@pytest.mark.parametrize("trajectory", ["heun", "rk4"])
def test_every_state_of_the_students_trajectory_holds_the_known_tokens(teacher_ckpt, trajectory):
    student = _student(teacher_ckpt, trajectory=trajectory)
    student.jump_policy = MovesEverything()
    states = []
    student.ema_posterior = _recording_posterior(student, states)
    g = torch.Generator().manual_seed(0)
    x1 = _batch(7)
    known = PromptMasking(1.0).draw(x1, g)
    t, h = torch.full((B,), 0.25), torch.full((B,), 0.5)
    x_t = known.impose(student.path.sample(x1, t, g))
    target = student.distillation_target(x_t, t, h, torch.zeros(B, dtype=torch.bool), g, known)
    assert len(states) == (2 if trajectory == "heun" else 4)
    assert all(known.kept(state) for state in states)
    assert torch.allclose(target.sum(-1), torch.ones(B, L), atol=1e-5)
    unconditioned = []
    student.ema_posterior = _recording_posterior(_student(teacher_ckpt, trajectory=trajectory), unconditioned)
    student.distillation_target(x_t, t, h, torch.zeros(B, dtype=torch.bool), g)
    assert not all(known.kept(state) for state in unconditioned)  # the jump does move them, unless conditioned


@pytest.mark.parametrize("source", ["mask"], indirect=True)  # the endpoint targets are mask-source only
@pytest.mark.parametrize("trajectory", ["endpoint", "endpoint_averaged"])
def test_sub_batches_of_live_sequences_keep_their_own_known_tokens(teacher_ckpt, trajectory):
    """Four sub-steps: h = 1/2 takes three midpoints of 1/8, h = 1/4 one, so the later jumps see row 0 alone."""
    student = _student(teacher_ckpt, trajectory=trajectory, substeps=4)
    student.jump_policy = MovesEverything()
    states = []
    student.ema_posterior = _recording_posterior(student, states)
    g = torch.Generator().manual_seed(1)
    x1 = _batch(8, 2)
    known = Given(x1, torch.tensor([[True] * 3 + [False] * (L - 3), [False] * (L - 2) + [True] * 2]))
    t, h = torch.zeros(2), torch.tensor([0.5, 0.25])
    x_t = known.impose(student.path.sample(x1, t, g))
    student.distillation_target(x_t, t, h, torch.zeros(2, dtype=torch.bool), g, known)
    assert [len(state) for state in states] == [2, 1, 1, 2]
    for state in states:
        assert (known if len(state) == 2 else known.select(torch.tensor([True, False]))).kept(state)


def test_a_prompt_masked_teacher_and_student_train(tmp_path):
    teacher = _teacher("uniform", prompt_masking=0.5)
    checkpoint = fit_checkpoint(teacher, tmp_path / "teacher", 2, tiny_synthetic())
    student = StudentModule(str(checkpoint), V, L, teacher_steps=8, prompt_masking=0.5)
    fit_checkpoint(student, tmp_path / "student", 2, tiny_synthetic())
    assert student.hparams.prompt_masking == 0.5


# ---- a bad value

@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_share_outside_zero_one_is_refused_with_how_to_fix_it(share):
    with pytest.raises(UserError, match=r"prompt_masking .* lies in \[0, 1\].*use 0 to train unconditionally") as error:
        _teacher(prompt_masking=share)
    assert user_message(error.value).startswith("TeacherModule: prompt_masking")


def test_the_student_refuses_a_bad_share_and_an_unknown_kind(teacher_ckpt):
    with pytest.raises(UserError, match=r"lies in \[0, 1\]; got 2"):
        _student(teacher_ckpt, prompt_masking=2.0)
    with pytest.raises(UserError, match="prompt_kinds must name one or more of"):
        _student(teacher_ckpt, prompt_masking=0.5, prompt_kinds=["suffix"])


def test_a_sequence_of_one_token_cannot_be_prompt_masked():
    with pytest.raises(UserError, match="needs sequences of 2 or more tokens"):
        TeacherModule(V, 1, backbone=TINY_TEACHER, prompt_masking=0.5)
