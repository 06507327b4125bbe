"""N-step sampling with dummy denoisers and with a tiny teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules import TeacherModule
from lightning_tsdfm.paths import MixturePath, make_source
from lightning_tsdfm.sampling import denoiser_step, parse_step_sizes, sample_chain

VOCAB = 10
LENGTH = 12


def sample_sequences(denoiser, path, jump, num_samples, seq_len, steps, generator=None, batch_size=None):
    """The N-step loop of a mixture-path denoiser: x_0 ~ source, then ``steps`` jumps of ``jump``."""
    return sample_chain(denoiser_step(denoiser, path, jump), path.source.sample, num_samples, seq_len, steps, generator,
                        batch_size=batch_size)


class FixedLogits(nn.Module):
    """Returns the same per-position logits whatever x_t, t, h are; records the calls."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, x_t, t, h):
        self.calls.append((x_t.clone(), t.clone(), h.clone()))
        return self.logits.expand(x_t.shape[0], x_t.shape[1], -1)


def _uniform_denoiser() -> FixedLogits:
    return FixedLogits(torch.zeros(1, 1, VOCAB))


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
@pytest.mark.parametrize("steps", [1, 2, 7])
def test_samples_are_complete_and_in_vocabulary(source_name, steps):
    path = MixturePath(make_source(source_name, VOCAB))
    out = sample_sequences(_uniform_denoiser(), path, BlindJump(), 6, LENGTH, steps, torch.Generator().manual_seed(0))
    assert out.shape == (6, LENGTH)
    assert out.dtype == torch.long
    assert out.min() >= 0 and out.max() < VOCAB  # in particular, no mask id (= VOCAB) is left


@pytest.mark.parametrize("steps", [1, 3])
def test_denoiser_sees_the_schedule(steps):
    denoiser = _uniform_denoiser()
    path = MixturePath(make_source("mask", VOCAB))
    sample_sequences(denoiser, path, BlindJump(), 2, LENGTH, steps, torch.Generator().manual_seed(0))
    assert len(denoiser.calls) == steps
    x0, t0, h0 = denoiser.calls[0]
    assert torch.all(x0 == VOCAB)  # starts from the all-mask source
    for k, (_, t, h) in enumerate(denoiser.calls):
        assert torch.allclose(t, torch.full((2,), k / steps))
        assert torch.allclose(h, torch.full((2,), 1 / steps))


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
def test_same_seed_same_samples(source_name):
    path = MixturePath(make_source(source_name, VOCAB))

    def draw(seed: int) -> torch.Tensor:
        return sample_sequences(_uniform_denoiser(), path, BlindJump(), 8, LENGTH, 4, torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1))
    # 96 uniform tokens over 10 ids: two seeds agree with probability 10^-96
    assert not torch.equal(draw(1), draw(2))


def test_uniform_denoiser_gives_diverse_tokens():
    path = MixturePath(make_source("mask", VOCAB))
    out = sample_sequences(_uniform_denoiser(), path, BlindJump(), 64, LENGTH, 4, torch.Generator().manual_seed(0))
    counts = torch.bincount(out.flatten(), minlength=VOCAB)
    assert torch.all(counts > 0), counts
    assert counts.max().item() < 0.2 * out.numel()


@pytest.mark.parametrize("num_samples,batch_size", [(10, 3), (10, 10), (7, 16), (1, 1)])
def test_batch_size_chunking(num_samples, batch_size):
    denoiser = _uniform_denoiser()
    path = MixturePath(make_source("mask", VOCAB))
    out = sample_sequences(denoiser, path, BlindJump(), num_samples, LENGTH, 2, torch.Generator().manual_seed(0), batch_size=batch_size)
    assert out.shape == (num_samples, LENGTH)
    assert out.max() < VOCAB
    assert max(x.shape[0] for x, _, _ in denoiser.calls) <= batch_size
    assert sum(x.shape[0] for x, _, _ in denoiser.calls) == 2 * num_samples


@pytest.mark.parametrize("steps", [0, -1])
def test_non_positive_steps_rejected(steps):
    path = MixturePath(make_source("mask", VOCAB))
    with pytest.raises(ValueError, match="steps"):
        sample_sequences(_uniform_denoiser(), path, BlindJump(), 2, LENGTH, steps)


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
@pytest.mark.parametrize("steps", [1, 2, 7])
def test_point_mass_denoiser_gives_that_token(source_name, steps):
    logits = torch.full((1, 1, VOCAB), -1e4)
    logits[..., 3] = 0.0
    path = MixturePath(make_source(source_name, VOCAB))
    out = sample_sequences(FixedLogits(logits), path, BlindJump(), 5, LENGTH, steps, torch.Generator().manual_seed(0))
    assert torch.all(out == 3), out


def test_position_dependent_denoiser():
    """Each position follows its own kernel: position i always becomes token i % V."""
    logits = torch.full((1, LENGTH, VOCAB), float("-inf"))
    target = torch.arange(LENGTH) % VOCAB
    logits[0, torch.arange(LENGTH), target] = 0.0
    path = MixturePath(make_source("mask", VOCAB))
    out = sample_sequences(FixedLogits(logits), path, BlindJump(), 3, LENGTH, 5, torch.Generator().manual_seed(0))
    assert torch.equal(out, target.expand(3, -1))


@pytest.mark.parametrize("source", ["mask", "uniform"])
def test_tiny_teacher_samples(source):
    torch.manual_seed(0)
    teacher = TeacherModule(8, 8, source=source, backbone=TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, cond_size=32))
    teacher.train()
    out = teacher.sample(5, 3, generator=torch.Generator().manual_seed(0), batch_size=2)
    assert out.shape == (5, 8)
    assert out.min() >= 0 and out.max() < 8
    assert teacher.training  # the train/eval mode is restored
    again = teacher.sample(5, 3, generator=torch.Generator().manual_seed(0), batch_size=2)
    assert torch.equal(out, again)
    # an untrained teacher is close to uniform: 40 tokens are not all the same
    assert out.unique().numel() > 1


# ---- non-uniform grids

FRONT = [1 / 16, 1 / 16, 1 / 8, 1 / 4, 1 / 2]


def test_the_denoiser_sees_the_grid_of_step_sizes():
    denoiser = _uniform_denoiser()
    path = MixturePath(make_source("mask", VOCAB))
    sample_chain(denoiser_step(denoiser, path, BlindJump()), path.source.sample, 2, LENGTH, len(FRONT),
                 torch.Generator().manual_seed(0), step_sizes=FRONT)
    starts = [0.0, 1 / 16, 1 / 8, 1 / 4, 1 / 2]
    assert [(t[0].item(), h[0].item()) for _, t, h in denoiser.calls] == list(zip(starts, FRONT))


@pytest.mark.parametrize("source_name", ["mask", "uniform"])
def test_uniform_step_sizes_are_the_uniform_grid_bit_for_bit(source_name):
    path = MixturePath(make_source(source_name, VOCAB))
    denoiser = FixedLogits(torch.randn(1, LENGTH, VOCAB, generator=torch.Generator().manual_seed(1)))
    step = denoiser_step(denoiser, path, BlindJump())
    default = sample_chain(step, path.source.sample, 5, LENGTH, 4, torch.Generator().manual_seed(0))
    explicit = sample_chain(step, path.source.sample, 5, LENGTH, 4, torch.Generator().manual_seed(0),
                            step_sizes=[0.25] * 4)
    assert torch.equal(default, explicit)


@pytest.mark.parametrize("sizes,steps,message", [([0.5, 0.25], 2, "sum to 1"), ([1.5, -0.5], 2, "positive"),
                                                 ([0.5, 0.5], 3, "2 step sizes for 3 steps")])
def test_a_bad_grid_is_refused(sizes, steps, message):
    path = MixturePath(make_source("mask", VOCAB))
    with pytest.raises(ValueError, match=message):
        sample_chain(denoiser_step(_uniform_denoiser(), path, BlindJump()), path.source.sample, 1, LENGTH, steps,
                     step_sizes=sizes)


def test_step_sizes_parse_as_fractions():
    assert parse_step_sizes("1/64, 1/64,1/32,0.5") == [1 / 64, 1 / 64, 1 / 32, 0.5]
    with pytest.raises(ValueError, match="comma-separated fractions"):
        parse_step_sizes("1/64,a quarter")


def test_a_teacher_samples_on_a_grid_and_first_hitting_refuses_one():
    torch.manual_seed(0)
    teacher = TeacherModule(8, 8, source="mask", backbone=TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, cond_size=32))
    uniform = teacher.sample(4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(uniform, teacher.sample(4, 4, generator=torch.Generator().manual_seed(0), step_sizes=[0.25] * 4))
    front = teacher.sample(4, 5, generator=torch.Generator().manual_seed(0), step_sizes=FRONT)
    assert front.shape == (4, 8) and front.max() < 8
    with pytest.raises(ValueError, match="uniform grid only"):
        teacher.sample(4, 5, sampler="first_hitting", step_sizes=FRONT)


def test_a_model_family_without_grids_is_told_so(monkeypatch):
    from lightning_tsdfm import samples_io
    from lightning_tsdfm.errors import UserError

    class UniformGridOnly:
        data_card = {"kind": "synthetic"}

        def sample(self, num_samples, steps, generator=None, batch_size=None, progress=False, jump=None, sampler=None):
            raise AssertionError("sampled on a grid it does not take")

    monkeypatch.setattr(samples_io, "load_module", lambda *args, **kwargs: UniformGridOnly())
    with pytest.raises(UserError, match="UniformGridOnly samples on the uniform grid h = 1/steps only"):
        samples_io.generate_samples("x.ckpt", 2, 1, step_sizes=[0.5, 0.5], progress=False)
