"""StudentModule: initialised as its teacher, base case = teacher, trajectory targets, checkpoints, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, quick_trainer, tiny_synthetic

from lightning_tsdfm import CausalLMModule, StudentModule
from lightning_tsdfm.distillation import DyadicStepSizes, heun_target, rk4_target
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.paths import MixturePath, make_source

VOCAB, LEN, BACKBONE = TINY_VOCAB, TINY_LEN, TINY_TEACHER
_datamodule = tiny_synthetic


def _fit_checkpoint(module, root, steps: int = 2, datamodule=None) -> Path:
    return fit_checkpoint(module, root, steps, datamodule or _datamodule())


def _student(teacher_ckpt, **kwargs) -> StudentModule:
    torch.manual_seed(0)  # the step-size embedding's first layer is freshly initialised
    return StudentModule(str(teacher_ckpt), VOCAB, LEN, teacher_steps=8, **kwargs)


def test_fresh_student_equals_its_teacher(teacher_ckpt):
    teacher = load_module(teacher_ckpt, expected_kind="teacher")
    student = _student(teacher_ckpt)
    x = torch.randint(0, VOCAB, (4, LEN))
    t = torch.rand(4)
    for h in (1.0, 0.25, 1 / 8):
        assert torch.equal(teacher(x, t), student(x, t, torch.full((4,), h)))


def test_base_case_target_is_the_teacher_prediction(teacher_ckpt):
    teacher = load_module(teacher_ckpt, expected_kind="teacher")
    student = _student(teacher_ckpt)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, VOCAB, (6, LEN))
    t = torch.rand(6)
    x_t = student.path.sample(x1, t, g)
    target = student.distillation_target(x_t, t, torch.full((6,), 1 / 8), torch.ones(6, dtype=torch.bool), g)
    assert torch.allclose(target, torch.softmax(teacher(x_t, t), -1), atol=1e-6)


def test_recursive_target_is_a_distribution_built_through_the_jump_policy(teacher_ckpt):
    student = _student(teacher_ckpt)
    calls = []

    class CountingJump(BlindJump):
        def __call__(self, *args, **kwargs):
            calls.append(1)
            return super().__call__(*args, **kwargs)

    student.jump_policy = CountingJump()
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, VOCAB, (4, LEN))
    t = torch.zeros(4)
    x_t = student.path.sample(x1, t, g)
    target = student.distillation_target(x_t, t, torch.full((4,), 0.5), torch.zeros(4, dtype=torch.bool), g)
    assert calls == [1]  # Heun: one midpoint
    assert torch.allclose(target.sum(-1), torch.ones(4, LEN), atol=1e-5)


@pytest.mark.parametrize("source", ["mask"], indirect=True)  # the endpoint targets are mask-source only
@pytest.mark.parametrize("h, midpoints", [(0.5, 3), (0.25, 1)])
def test_endpoint_substeps_take_their_midpoints_through_the_jump_policy_down_to_the_teachers_step(teacher_ckpt, h,
                                                                                                   midpoints):
    """Four sub-steps of h = 1/2 are three midpoints of 1/8 = 1/N; of h = 1/4 only one fits above 1/N."""
    student = _student(teacher_ckpt, trajectory="endpoint_averaged", substeps=4)
    calls = []

    class CountingJump(BlindJump):
        def __call__(self, x_t, probs, t, h, *args, **kwargs):
            calls.append(round(float(h[0]), 6))
            return super().__call__(x_t, probs, t, h, *args, **kwargs)

    student.jump_policy = CountingJump()
    g = torch.Generator().manual_seed(0)
    x_t = torch.full((4, LEN), VOCAB)  # all masked at t = 0
    target = student.distillation_target(x_t, torch.zeros(4), torch.full((4,), h), torch.zeros(4, dtype=torch.bool), g)
    assert calls == [0.125] * midpoints
    assert torch.isfinite(target).all() and (target >= 0).all()  # one draw; its mean is a distribution
    with pytest.raises(ValueError, match="endpoint targets only"):
        _student(teacher_ckpt, trajectory="heun", substeps=4)


@pytest.mark.parametrize("source", ["mask", "uniform"])
def test_trajectory_targets_of_a_state_independent_kernel_equal_the_kernel(source):
    path = MixturePath(make_source(source, VOCAB))
    probs = torch.softmax(torch.randn(LEN, VOCAB), -1)
    kernel = lambda x, t, h: probs.expand(x.shape[0], -1, -1)  # noqa: E731
    x_t = path.source.sample((3, LEN), torch.Generator().manual_seed(0), "cpu")
    t, h = torch.zeros(3), torch.full((3,), 0.5)
    for target_fn in (heun_target, rk4_target):
        assert torch.allclose(target_fn(kernel, BlindJump(), path, x_t, t, h), probs.expand(3, -1, -1), atol=1e-6)


@given(st.sampled_from([2, 8, 64, 1024]), st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_dyadic_steps_stay_on_the_grid(finest, base_fraction, seed):
    steps = DyadicStepSizes(finest, base_fraction)
    t, h, is_base = steps.sample(256, torch.Generator().manual_seed(seed))
    assert (t + h <= 1.0 + 1e-6).all()
    assert torch.allclose(torch.round(t / h) * h, t, atol=1e-6)  # t is a multiple of h
    assert torch.allclose(h[is_base], torch.full_like(h[is_base], 1.0 / finest))
    assert (h[~is_base] >= 2.0 / finest - 1e-9).all()
    levels = torch.log2(1 / h)
    assert torch.allclose(levels, torch.round(levels), atol=1e-5)


def test_dyadic_steps_reject_bad_settings():
    with pytest.raises(ValueError, match="power of two"):
        DyadicStepSizes(100)
    with pytest.raises(ValueError, match="base_fraction"):
        DyadicStepSizes(8, base_fraction=1.0)
    with pytest.raises(ValueError, match="level_weights"):
        DyadicStepSizes(8, level_weights=[1.0])


def test_student_checkpoint_resumes_and_loads_without_its_teacher(teacher_ckpt, tmp_path):
    straight = _student(teacher_ckpt)
    quick_trainer(tmp_path / "a", 6).fit(straight, datamodule=_datamodule())

    first = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=4, save_top_k=-1, filename="{step}")
    quick_trainer(tmp_path / "b", 4, [first]).fit(_student(teacher_ckpt), datamodule=_datamodule())
    resumed = _student(teacher_ckpt)
    quick_trainer(tmp_path / "c", 6).fit(resumed, datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / "step=4.ckpt")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name

    saved = _fit_checkpoint(_student(teacher_ckpt), tmp_path / "saved", steps=1)
    state = torch.load(saved, weights_only=False)["state_dict"]
    assert not any(k.startswith(("_teacher", "teacher")) for k in state)  # the frozen teacher is not saved
    hidden = teacher_ckpt.with_name("moved.ckpt")
    teacher_ckpt.rename(hidden)
    try:
        student = load_module(saved, expected_kind="student")
        assert student.sample(2, 4, generator=torch.Generator().manual_seed(0)).shape == (2, LEN)
    finally:
        hidden.rename(teacher_ckpt)


def test_incompatible_teacher_checkpoints_are_refused(teacher_ckpt, source, tmp_path):
    causal = _fit_checkpoint(CausalLMModule(VOCAB, LEN, backbone=BACKBONE), tmp_path / "causal", steps=1)
    with pytest.raises(ValueError, match="'causal_lm' checkpoint, but a 'teacher'"):
        StudentModule(str(causal), VOCAB, LEN)
    with pytest.raises(ValueError, match="vocab_size"):
        StudentModule(str(teacher_ckpt), VOCAB + 1, LEN)
    with pytest.raises(ValueError, match="seq_len"):
        StudentModule(str(teacher_ckpt), VOCAB, 2 * LEN)
    with pytest.raises(ValueError, match="trajectory"):
        StudentModule(str(teacher_ckpt), VOCAB, LEN, trajectory="euler")
    for endpoint in ("endpoint", "endpoint_averaged"):  # a signed target where tokens may jump
        if source == "mask":
            StudentModule(str(teacher_ckpt), VOCAB, LEN, trajectory=endpoint)
        else:
            with pytest.raises(ValueError, match="needs a mask-source teacher; this teacher's source is 'uniform'"):
                StudentModule(str(teacher_ckpt), VOCAB, LEN, trajectory=endpoint)


def test_student_refuses_data_of_another_language(teacher_ckpt, tmp_path):
    with pytest.raises(ValueError, match="mismatch"):
        quick_trainer(tmp_path, 1).fit(_student(teacher_ckpt), datamodule=_datamodule(language_seed=7))


def test_student_validates_and_monitors_generation(teacher_ckpt, tmp_path):
    from lightning_tsdfm import GenerationMonitor

    monitor = GenerationMonitor(num_samples=4, steps=2, judge="oracle")
    trainer = quick_trainer(tmp_path, 4, [monitor], val_batches=1)  # validation runs at the end of the 4-batch epoch
    trainer.fit(_student(teacher_ckpt), datamodule=_datamodule())
    metrics = trainer.callback_metrics
    assert {"val/ce", "val/nelbo", "val/gen_ppl", "val/entropy"} <= set(metrics)
    assert torch.isfinite(metrics["val/nelbo"])


@pytest.mark.parametrize("divergence", ["forward", "reverse"])
def test_divergence_is_the_kl_the_student_trains_by(teacher_ckpt, divergence):
    """forward: KL(target || student); reverse: KL(student || target), SDTT's; they differ on one batch."""
    from lightning_tsdfm.losses import forward_kl, reverse_kl

    student = _student(teacher_ckpt, divergence=divergence)
    x1 = torch.randint(0, VOCAB, (4, LEN), generator=torch.Generator().manual_seed(0))
    target = torch.softmax(torch.randn(4, LEN, VOCAB, generator=torch.Generator().manual_seed(1)), -1)
    logits = torch.randn(4, LEN, VOCAB, generator=torch.Generator().manual_seed(2))
    seen = {}

    def distillation_target(x_t, t, h, is_base, generator, given=None):
        seen["x_t"] = x_t
        return target

    student.distillation_target = distillation_target
    student.forward = lambda x, t, h=None, z=None: logits
    loss = student.training_step(x1, 0)
    positions = student.path.source.unsettled(seen["x_t"])
    assert positions.any()
    forward, reverse = forward_kl(target, logits, positions), reverse_kl(logits, target, positions)
    assert torch.equal(loss, forward if divergence == "forward" else reverse)
    assert not torch.allclose(forward, reverse)


def test_divergence_settings_are_checked(teacher_ckpt):
    with pytest.raises(ValueError, match="use forward .* or reverse"):
        _student(teacher_ckpt, divergence="jensen-shannon")
    with pytest.raises(ValueError, match="forward KL to the mixture only"):
        _student(teacher_ckpt, divergence="reverse", latent_codes=2)
