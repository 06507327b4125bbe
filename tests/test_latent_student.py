"""A student whose posterior is a mixture over latent codes: the backbone's codes, the mixture loss, a fresh
latent student equal to its teacher, training, checkpoints and sampling with a code drawn per step."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from lightning_helpers import TINY_LEN, TINY_VOCAB, fit_checkpoint, tiny_synthetic

from lightning_tsdfm import StudentModule
from lightning_tsdfm.losses import forward_kl, mixture_forward_kl
from lightning_tsdfm.modules import load_module


def _student(teacher_ckpt, **kwargs) -> StudentModule:
    torch.manual_seed(0)
    return StudentModule(str(teacher_ckpt), TINY_VOCAB, TINY_LEN, teacher_steps=8, **kwargs)


def _targets(seed: int, codes: int, batch: int = 3, length: int = 5, vocab: int = 4):
    g = torch.Generator().manual_seed(seed)
    target = torch.softmax(torch.randn(batch, length, vocab, generator=g) * 3, -1)
    logits = torch.randn(codes, batch, length, vocab, generator=g) * 2
    positions = torch.rand(batch, length, generator=g) < 0.7
    return target, logits, positions


@given(seed=st.integers(0, 10_000))
def test_one_code_is_the_forward_kl(seed):
    target, logits, positions = _targets(seed, 1)
    loss, responsibility = mixture_forward_kl(target, logits, positions)
    assert torch.allclose(loss, forward_kl(target, logits[0], positions), atol=1e-5)
    assert torch.equal(responsibility, torch.ones(1, 3))


@given(seed=st.integers(0, 10_000), codes=st.integers(2, 5))
def test_mixture_loss_lies_between_its_best_code_and_that_code_plus_log_m(seed, codes):
    """LME_m a_m is within log M of max_m a_m, so per sequence the loss is the best code's KL, up to log M / n."""
    target, logits, positions = _targets(seed, codes, batch=1)
    loss, responsibility = mixture_forward_kl(target, logits, positions)
    best = min(forward_kl(target, logits[m], positions) for m in range(codes))
    n = max(int(positions.sum()), 1)
    assert best - 1e-5 <= loss <= best + math.log(codes) / n + 1e-5
    assert torch.allclose(responsibility.sum(0), torch.ones(1)) and loss >= 0


@given(seed=st.integers(0, 10_000))
def test_equal_codes_are_one_code(seed):
    target, logits, positions = _targets(seed, 1)
    loss, responsibility = mixture_forward_kl(target, logits.expand(3, -1, -1, -1), positions)
    assert torch.allclose(loss, forward_kl(target, logits[0], positions), atol=1e-5)
    assert torch.allclose(responsibility, torch.full((3, 3), 1 / 3))


@pytest.mark.parametrize("latent_layers", [0, 1])
def test_backbone_runs_the_uncoded_blocks_once_for_all_codes(make_backbone, randomize, latent_layers):
    net = randomize(make_backbone(input_vocab_size=9, output_vocab_size=8, max_seq_len=6, latent_codes=4,
                                  latent_layers=latent_layers))
    x, t = torch.randint(0, 9, (3, 6)), torch.rand(3)
    codes = torch.arange(4)[:, None].expand(-1, 3)
    together = net(x, t, z=codes)
    assert together.shape == (4, 3, 6, 8)
    for m in range(4):
        assert torch.allclose(together[m], net(x, t, z=codes[m]), atol=1e-5)
    assert not torch.allclose(together[0], together[1])  # randomised code weights: the codes differ
    with pytest.raises(ValueError, match="latent codes: pass z"):
        net(x, t)
    with pytest.raises(ValueError, match=r"z must have shape \[3\]"):
        net(x, t, z=torch.zeros(2, dtype=torch.long))


def test_fresh_latent_student_equals_its_teacher_at_every_code(teacher_ckpt):
    teacher = load_module(teacher_ckpt, expected_kind="teacher")
    student = _student(teacher_ckpt, latent_codes=3)
    x, t, h = torch.randint(0, TINY_VOCAB, (4, TINY_LEN)), torch.rand(4), torch.full((4,), 0.25)
    expected = torch.log_softmax(teacher(x, t), -1)
    for m in range(3):
        assert torch.allclose(torch.log_softmax(student(x, t, h, z=torch.full((4,), m)), -1), expected, atol=1e-6)
    assert torch.allclose(torch.log_softmax(student(x, t, h), -1), expected, atol=1e-5)  # the marginal


def test_latent_student_trains_reloads_and_samples_a_code_per_step(teacher_ckpt, tmp_path):
    student = _student(teacher_ckpt, latent_codes=3)
    before = student.net.code_embed.linear.weight.clone()
    ckpt = fit_checkpoint(student, tmp_path, 3, tiny_synthetic())
    assert not torch.equal(student.net.code_embed.linear.weight, before)  # the codes learn
    loaded = load_module(ckpt, expected_kind="student")
    assert loaded.latent_codes == 3
    assert torch.equal(loaded.net.code_embed.codes, student.net.code_embed.codes)
    first = loaded.sample(5, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, loaded.sample(5, 4, generator=torch.Generator().manual_seed(1)))
    assert first.shape == (5, TINY_LEN) and int(first.max()) < TINY_VOCAB


def test_codes_are_drawn_from_the_sampling_generator(teacher_ckpt):
    student = _student(teacher_ckpt, latent_codes=4)
    seen = []
    student.net.code_embed.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    student.sample(6, 2, generator=torch.Generator().manual_seed(0))
    assert len(seen) == 2 and all(z.shape == (6,) for z in seen)
    g = torch.Generator().manual_seed(0)
    student.path.source.sample((6, TINY_LEN), g, "cpu")
    assert torch.equal(seen[0], torch.randint(4, (6,), generator=g))


def test_latent_student_refuses_the_first_hitting_sampler_and_no_codes(teacher_ckpt):
    with pytest.raises(ValueError, match="mixture over 2 latent codes: use the ancestral sampler"):
        _student(teacher_ckpt, latent_codes=2).sample(2, 4, sampler="first_hitting")
    with pytest.raises(ValueError, match="latent_codes must be >= 1"):
        _student(teacher_ckpt, latent_codes=0)
    with pytest.raises(ValueError, match="this student has none: set latent_codes > 1"):
        _student(teacher_ckpt, latent_init_std=0.05)


def test_code_use_is_logged_as_perplexities(teacher_ckpt):
    student = _student(teacher_ckpt, latent_codes=4)
    logged = {}
    student.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    one_hot = torch.eye(4)[:, [0, 1, 2, 3, 0, 1, 2, 3]]  # every target has its own code; all four codes used
    student.log_code_use(one_hot)
    assert logged == pytest.approx({"train/codes_in_use": 4.0, "train/codes_per_target": 1.0})
    student.log_code_use(torch.full((4, 8), 0.25))  # the codes do not tell the targets apart
    assert logged == pytest.approx({"train/codes_in_use": 4.0, "train/codes_per_target": 4.0})


def test_latent_layers_beyond_the_backbone_are_refused(teacher_ckpt):
    with pytest.raises(ValueError, match=r"latent_layers in \[0, num_layers=1\]"):
        _student(teacher_ckpt, latent_codes=2, latent_layers=2)


def test_codes_started_apart_differ_from_the_first_step(teacher_ckpt):
    together = _student(teacher_ckpt, latent_codes=3)
    apart = _student(teacher_ckpt, latent_codes=3, latent_init_std=0.05)
    x, t, h = together.path.source.sample((4, TINY_LEN), None, "cpu"), torch.zeros(4), torch.full((4,), 0.25)
    codes = torch.arange(3)[:, None].expand(-1, 4)
    together, apart = together(x, t, h, z=codes), apart(x, t, h, z=codes)
    assert torch.equal(together[0], together[1]) and not torch.equal(apart[0], apart[1])
