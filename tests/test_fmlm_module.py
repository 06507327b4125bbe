"""FMLMModule: a fresh student is its FLM teacher, the semigroup targets and pair times, the flow-map sampler (its g
and its noise level), exact resume, a discrete teacher refused, the shaper's refusal."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.shaping import TrajectoryShaper

tsdfm_flm = pytest.importorskip("tsdfm_flm", reason="the FLM plugin is installed by `make install`")
from tsdfm_flm import FLMModule, FMLMModule, OneHotGaussianPath, flow_map, flow_map_sampling_step  # noqa: E402

VOCAB, LEN = 8, 8
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)


def _datamodule() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=4, seq_len=LEN, num_train=8, num_val=4, batch_size=8)


@pytest.fixture(scope="module")
def flm_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    flm = FLMModule(VOCAB, LEN, backbone=BACKBONE, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    return fit_checkpoint(flm, tmp_path_factory.mktemp("flm"), 3, _datamodule())


def _fmlm(flm_ckpt, **kwargs) -> FMLMModule:
    torch.manual_seed(0)
    return FMLMModule(str(flm_ckpt), VOCAB, LEN, **{"optimizer": OptimizerConfig(lr=1e-2, warmup_steps=1), **kwargs})


def test_fresh_student_equals_its_teacher_on_the_diagonal(flm_ckpt):
    teacher, student = load_module(flm_ckpt), _fmlm(flm_ckpt).eval()
    g = torch.Generator().manual_seed(0)
    x, tau = torch.randn(3, LEN, VOCAB, generator=g), torch.rand(3, generator=g)
    assert torch.equal(student.denoise(x, tau, torch.zeros(3)), teacher.denoise(x, tau))
    assert torch.equal(student.denoise(x, tau, 1 - tau), teacher.denoise(x, tau))  # zero-initialised second time
    assert student.data_card == teacher.data_card and student.hparams.teacher_hparams["vocab_size"] == VOCAB
    assert not any(k.startswith("teacher") for k in student.state_dict())  # held by reference, not saved


def test_a_discrete_checkpoint_as_teacher_is_a_clear_error(tmp_path):
    discrete = fit_checkpoint(TeacherModule(VOCAB, LEN, backbone=BACKBONE), tmp_path, 1, _datamodule())
    with pytest.raises(UserError, match="'teacher' checkpoint, a model of discrete tokens: FMLM distils .* an FLM"):
        FMLMModule(str(discrete), VOCAB, LEN)


def test_pair_times_split_the_batch_at_fixed_fractions(flm_ckpt):
    student = _fmlm(flm_ckpt, diagonal_fraction=0.5)
    s, u, t, diagonal = student.pair_times(64, torch.Generator().manual_seed(0), "cpu")
    assert int(diagonal.sum()) == 32 and torch.equal(s[diagonal], t[diagonal])
    boundary = (s == 0) & (t == 1)
    assert int(boundary.sum()) == 1  # (1 - 0.5) / 32 of 64
    assert ((0 <= s) & (s <= u) & (u <= t) & (t <= 1)).all() and torch.allclose(u, (s + t) / 2)
    assert (t[~diagonal] > s[~diagonal]).all()


def test_targets_are_the_teacher_on_the_diagonal_and_the_composition_elsewhere(flm_ckpt):
    student = _fmlm(flm_ckpt)
    teacher = student.teacher()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, LEN, VOCAB, generator=g)
    s, u, t = torch.tensor([0.3, 0.2, 0.0]), torch.tensor([0.3, 0.5, 0.5]), torch.tensor([0.3, 0.8, 1.0])
    target = student.semigroup_targets(x, s, u, t, torch.tensor([True, False, False]))
    assert torch.allclose(target[0], teacher.denoise(x[:1], s[:1])[0])
    with torch.no_grad():  # the boundary pair (0, 1): lambda = 0, the target is delta(X_{0,1/2}; 1/2, 1)
        gammas = [student.path.time.gamma(v[2:]) for v in (s, u, t)]
        midpoint = flow_map(x[2:], student.denoise(x[2:], s[2:], u[2:] - s[2:]), gammas[0], gammas[1])
        assert torch.allclose(target[2], student.denoise(midpoint, u[2:], t[2:] - u[2:])[0], atol=1e-6)
    assert torch.allclose(target.sum(-1), torch.ones(3, LEN), atol=1e-5)


@pytest.mark.parametrize("noise", [0.0, 0.5, 1.0])
def test_flow_map_step_keeps_data_weight_gamma_next_and_noise_level_sigma(noise):
    """From z = (1 - gamma_i) eps + gamma_i D with a constant denoiser D, one step lands on gamma_{i+1} D plus noise
    of standard deviation 1 - gamma_{i+1} (exactly the old noise, rescaled, when g = 0)."""
    path = OneHotGaussianPath(VOCAB)
    denoised = torch.softmax(torch.randn(VOCAB, generator=torch.Generator().manual_seed(0)), -1).expand(64, 32, VOCAB)
    step = flow_map_sampling_step(lambda z, tau, h: denoised, path, noise)
    tau, h = torch.full((64,), 0.25), torch.full((64,), 0.25)
    g_here, g_next = path.gamma(tau)[0].item(), path.gamma(tau + h)[0].item()
    eps = torch.randn(64, 32, VOCAB, generator=torch.Generator().manual_seed(1))
    moved = step((1 - g_here) * eps + g_here * denoised, tau, h, torch.Generator().manual_seed(2))
    residual = moved - g_next * denoised
    if noise == 0.0:
        assert torch.allclose(residual, (1 - g_next) * eps, atol=1e-5)
    assert abs(residual.std().item() - (1 - g_next)) < 0.02 * (1 - g_next) + 1e-3
    assert abs(residual.mean().item()) < 0.02


def test_sampler_names_carry_g_and_one_step_ignores_it(flm_ckpt):
    student = _fmlm(flm_ckpt, sampling_noise=0.8).eval()
    assert student.sampler_settings("flow_map") == {"g": 0.8}
    assert student.sampler_settings("flow_map_g0") == {"g": 0.0}
    for bad in ("euler", "flow_map_g1.5", "flow_map_gx"):
        with pytest.raises(ValueError, match="flow_map"):
            student.sample(2, 2, sampler=bad)
    def draw(steps: int, sampler: str) -> torch.Tensor:
        return student.sample(4, steps, generator=torch.Generator().manual_seed(0), sampler=sampler)

    one = [draw(1, s) for s in ("flow_map", "flow_map_g0")]
    assert torch.equal(*one)
    z0 = torch.randn(4, LEN, VOCAB, generator=torch.Generator().manual_seed(0))
    assert torch.equal(one[0], student.denoise(z0, torch.zeros(4), torch.ones(4)).argmax(-1))
    two = [draw(4, s) for s in ("flow_map", "flow_map_g0")]
    assert two[0].shape == (4, LEN) and not torch.equal(*two)


def test_distillation_trains_loads_back_and_samples_through_the_cli(flm_ckpt, tmp_path):
    from lightning_tsdfm.cli import main
    from lightning_tsdfm.samples_io import read_jsonl

    student = _fmlm(flm_ckpt)
    ckpt = fit_checkpoint(student, tmp_path / "run", 3, _datamodule())
    loaded = load_module(ckpt, expected_kind="fmlm")
    assert isinstance(loaded, FMLMModule) and math.isclose(loaded.boundary_fraction, 0.5 / 32)
    main(["sample", "--checkpoint", str(ckpt), "--output", str(tmp_path / "s.jsonl"), "--steps", "2",
          "--num_samples", "3", "--sampler", "flow_map_g0.5"])
    samples = read_jsonl(tmp_path / "s.jsonl")
    assert samples.meta["kind"] == "fmlm" and samples.meta["sampler"] == "flow_map_g0.5"
    assert samples.meta["sampler_settings"] == {"g": 0.5}


def test_resume_gives_the_same_weights(flm_ckpt, tmp_path):
    straight = _fmlm(flm_ckpt)
    quick_trainer(tmp_path / "a", 4).fit(straight, datamodule=_datamodule())
    saver = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=1, save_top_k=-1, filename="{step}")
    quick_trainer(tmp_path / "b", 2, [saver]).fit(_fmlm(flm_ckpt), datamodule=_datamodule())
    resumed = _fmlm(flm_ckpt)
    quick_trainer(tmp_path / "c", 4).fit(resumed, datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / "step=2.ckpt")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_the_shaper_says_why_it_does_not_apply(flm_ckpt):
    with pytest.raises(TypeError, match="does not apply to FMLMModule: its states are continuous"):
        TrajectoryShaper("oracle").setup(None, _fmlm(flm_ckpt), "fit")
