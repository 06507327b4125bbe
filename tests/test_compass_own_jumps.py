"""A compass for any shapeable model's own jumps (CompassModule with ``teacher_kind``): its negatives are the
model's kernel drawn by the compass's blind jump (MDLM's SUBS denoiser on its path, SEDD's next-state kernel with
``transition``); it trains, loads without the model's file, and is accepted by TrajectoryShaper for an SDTT student
of that MDLM. For a TeacherModule nothing changed: the same negatives bit for bit, and a compass saved before
``teacher_kind`` existed loads and scores the same."""

from __future__ import annotations

import sys

import pytest
import torch
from lightning_helpers import CONFIGS, TINY_BACKBONE, TINY_SYNTHETIC, fit_checkpoint, quick_trainer, tiny_fit_args

from lightning_tsdfm import CausalLMModule, CompassModule, SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.cli import main
from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.shaping import TrajectoryShaper

tsdfm_mdlm = pytest.importorskip("tsdfm_mdlm", reason="the MDLM plugin is installed by `make install`")
tsdfm_sedd = pytest.importorskip("tsdfm_sedd", reason="the SEDD plugin is installed by `make install`")
from tsdfm_mdlm import MDLMModule, SDTTModule  # noqa: E402
from tsdfm_sedd import SEDDModule  # noqa: E402

VOCAB, LEN = 8, 8
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16, norm_weights=True)
SMALL = TransformerConfig(hidden_size=8, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=8)


def _datamodule() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=4, seq_len=LEN, num_train=8, num_val=4, batch_size=4)


def _fit(module, root, steps: int):
    torch.manual_seed(0)
    return fit_checkpoint(module, root, steps, _datamodule())


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return _fit(TeacherModule(VOCAB, LEN, backbone=BACKBONE, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1)), tmp_path_factory.mktemp("teacher"), 2)


@pytest.fixture(scope="module")
def mdlm_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return _fit(MDLMModule(VOCAB, LEN, backbone=BACKBONE, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1)), tmp_path_factory.mktemp("mdlm"), 2)


@pytest.fixture(scope="module", params=["absorb", "uniform"])
def sedd_ckpt(request, tmp_path_factory):
    torch.manual_seed(0)
    sedd = SEDDModule(VOCAB, LEN, graph=request.param, backbone=BACKBONE, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    return _fit(sedd, tmp_path_factory.mktemp(f"sedd_{request.param}"), 2)


def _compass(checkpoint, **kwargs) -> CompassModule:
    torch.manual_seed(0)
    return CompassModule(str(checkpoint), VOCAB, LEN, backbone=SMALL, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1), **kwargs)


def _state(compass: CompassModule, seed: int = 0):
    """(x_s, s, h): path samples of random data at times s, and steps h that end before t_max."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(6, generator=g) * 0.5
    x_s = compass.path.sample(torch.randint(0, VOCAB, (6, LEN), generator=g), s, g)
    return x_s, s, torch.full((6,), 0.25)


def _trains(compass: CompassModule, root) -> dict:
    """Fit three steps; the weights move and the loss is finite. Returns the trainer's metrics."""
    before = [p.detach().clone() for p in compass.parameters()]
    trainer = quick_trainer(root, 3)
    trainer.fit(compass, datamodule=_datamodule())
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert not all(torch.equal(a, b) for a, b in zip(before, compass.parameters()))
    trainer.save_checkpoint(root / "compass.ckpt")
    return trainer.callback_metrics


# ---- the teacher: unchanged

def test_teacher_negatives_are_its_blind_jump_bit_for_bit(teacher_ckpt):
    compass = _compass(teacher_ckpt)
    assert compass.hparams.teacher_kind == "teacher" and compass.hparams.teacher_sampler is None
    x_s, s, h = _state(compass)
    teacher = compass.teacher()
    expected = BlindJump()(x_s, torch.softmax(teacher(x_s, s).float(), dim=-1), s, h, compass.path,
                           torch.Generator().manual_seed(1))
    assert torch.equal(compass._teacher_jump(x_s, s, h, torch.Generator().manual_seed(1)), expected)


def test_a_compass_saved_without_teacher_kind_loads_and_scores_the_same(teacher_ckpt, tmp_path):
    compass = _compass(teacher_ckpt)
    _trains(compass, tmp_path)
    saved = torch.load(tmp_path / "compass.ckpt", weights_only=False)
    for key in ("teacher_kind", "teacher_sampler"):
        del saved["hyper_parameters"][key]
    torch.save(saved, tmp_path / "old.ckpt")
    old = load_module(tmp_path / "old.ckpt", expected_kind="compass")
    assert old.hparams.teacher_kind == "teacher"
    x, t = torch.randint(0, VOCAB + 1, (4, LEN)), torch.rand(4)
    assert torch.equal(old.energies(x, t), compass.eval().energies(x, t))


def test_a_compass_trains_on_a_students_own_jumps(teacher_ckpt, tmp_path):
    """On-policy negatives: the jumps the student makes at step h, its step-size conditioning included."""
    from lightning_tsdfm import StudentModule

    torch.manual_seed(0)
    student = _fit(StudentModule(str(teacher_ckpt), VOCAB, LEN, teacher_steps=8,
                                 optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1)), tmp_path / "student", 2)
    saved = torch.load(student, weights_only=False)  # a step-size embedding far from its zero start: h matters
    for key in [k for k in saved["state_dict"] if "step_embed" in k]:
        saved["state_dict"][key] = torch.randn_like(saved["state_dict"][key])
    torch.save(saved, student)
    compass = _compass(student, teacher_kind="student")
    trained = load_module(student, expected_kind="student")
    x_s, s, h = _state(compass)
    own = BlindJump()(x_s, torch.softmax(trained(x_s, s, h).float(), dim=-1), s, h, trained.path,
                      torch.Generator().manual_seed(1))
    assert torch.equal(compass._teacher_jump(x_s, s, h, torch.Generator().manual_seed(1)), own)
    teacher_step = BlindJump()(x_s, torch.softmax(trained(x_s, s, torch.full_like(h, 1 / 8)).float(), dim=-1), s, h,
                               trained.path, torch.Generator().manual_seed(1))
    assert not torch.equal(own, teacher_step)  # the posterior of step h, not of the base step
    _trains(compass, tmp_path / "compass")


# ---- MDLM, SEDD: their own jumps

def test_a_compass_trains_on_mdlm_own_jumps(mdlm_ckpt, tmp_path):
    compass = _compass(mdlm_ckpt, teacher_kind="mdlm")
    mdlm = load_module(mdlm_ckpt, expected_kind="mdlm")
    assert compass.hparams.source == "mask" and compass.hparams.scheduler_exponent == 1.0
    assert compass.hparams.t_max == mdlm.t_max and compass.data_card == mdlm.data_card
    x_s, s, h = _state(compass)
    own = BlindJump()(x_s, torch.softmax(mdlm(x_s, s).float(), dim=-1), s, h, mdlm.path, torch.Generator().manual_seed(1))
    assert torch.equal(compass._teacher_jump(x_s, s, h, torch.Generator().manual_seed(1)), own)
    _trains(compass, tmp_path)
    assert compass.parameter_ratio() > 0


def test_a_compass_trains_on_sedd_own_jumps(sedd_ckpt, tmp_path):
    sedd = load_module(sedd_ckpt, expected_kind="sedd")
    for sampler in ("tweedie", "euler"):
        compass = _compass(sedd_ckpt, teacher_kind="sedd", teacher_sampler=sampler)
        assert compass.source_name == sedd.path.source.name
        x_s, s, h = _state(compass)
        own = BlindJump().transition(x_s, sedd.kernel(x_s, s, h, sampler), s, h, torch.Generator().manual_seed(1))
        assert torch.equal(compass._teacher_jump(x_s, s, h, torch.Generator().manual_seed(1)), own)
    _trains(compass, tmp_path)
    loaded = load_module(tmp_path / "compass.ckpt", expected_kind="compass")
    assert loaded.hparams.teacher_kind == "sedd" and loaded.hparams.teacher_sampler == "euler"


# ---- the SDTT student of that MDLM accepts the MDLM's compass

def _sdtt(mdlm_ckpt) -> SDTTModule:
    torch.manual_seed(0)
    return SDTTModule(str(mdlm_ckpt), VOCAB, LEN, teacher_steps=16, num_rounds=2, steps_per_round=2, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))


def test_the_mdlm_compass_shapes_its_sdtt_student(mdlm_ckpt, tmp_path):
    _trains(_compass(mdlm_ckpt, teacher_kind="mdlm"), tmp_path / "compass")
    compass_ckpt = str(tmp_path / "compass" / "compass.ckpt")
    TrajectoryShaper(compass_ckpt).setup(None, _sdtt(mdlm_ckpt), "fit")  # vocabulary, source and length match

    blind = _sdtt(mdlm_ckpt)
    quick_trainer(tmp_path / "blind", 3).fit(blind, datamodule=_datamodule())
    shaped = _sdtt(mdlm_ckpt)
    trainer = quick_trainer(tmp_path / "shaped", 3, [TrajectoryShaper(compass_ckpt, num_candidates=4)])
    trainer.fit(shaped, datamodule=_datamodule())
    assert not all(torch.equal(a, b) for a, b in zip(blind.state_dict().values(), shaped.state_dict().values()))
    assert 0.0 < trainer.callback_metrics["shaping/changed_fraction"] <= 1.0


def test_a_compass_of_another_source_is_refused_for_the_sdtt_student(mdlm_ckpt, tmp_path):
    torch.manual_seed(0)
    uniform = _fit(SEDDModule(VOCAB, LEN, graph="uniform", backbone=BACKBONE), tmp_path / "sedd", 1)
    _trains(_compass(uniform, teacher_kind="sedd"), tmp_path / "compass")
    with pytest.raises(ValueError, match="'uniform' source but SDTTModule uses the 'mask' source"):
        TrajectoryShaper(str(tmp_path / "compass" / "compass.ckpt")).setup(None, _sdtt(mdlm_ckpt), "fit")


# ---- clear errors

def test_a_wrong_kind_sampler_or_model_is_a_clear_error(teacher_ckpt, mdlm_ckpt, tmp_path):
    with pytest.raises(ValueError, match="'teacher' checkpoint, but a 'mdlm' checkpoint"):
        _compass(teacher_ckpt, teacher_kind="mdlm")
    with pytest.raises(ValueError, match="'mdlm' checkpoint, but a 'teacher' checkpoint"):
        _compass(mdlm_ckpt)
    with pytest.raises(ValueError, match="MDLMModule has no sampler 'euler'"):
        _compass(mdlm_ckpt, teacher_kind="mdlm", teacher_sampler="euler")
    causal = _fit(CausalLMModule(VOCAB, LEN, backbone=SMALL), tmp_path / "causal", 1)
    with pytest.raises(TypeError, match="jumps of a shapeable model, and CausalLMModule is not one"):
        _compass(causal, teacher_kind="causal_lm")
    with pytest.raises(ValueError, match="vocab_size=8 but the data has 9 tokens"):
        CompassModule(str(mdlm_ckpt), VOCAB + 1, LEN, teacher_kind="mdlm")


# ---- the shipped config

def test_cli_fits_the_mdlm_compass_config(tmp_path, monkeypatch):
    """`tsdfm fit --config configs/synthetic_mdlm_compass.yaml`, with a tiny MDLM and data."""
    config = read_config(CONFIGS / "synthetic_mdlm_compass.yaml")
    assert config["model"]["init_args"]["teacher_kind"] == "mdlm"
    tiny = dict(arg.removeprefix("--data.init_args.").split("=") for arg in TINY_SYNTHETIC)
    data = {**config["data"]["init_args"], **{key: int(value) for key, value in tiny.items()}}
    torch.manual_seed(0)
    mdlm = fit_checkpoint(MDLMModule(16, 16, backbone=BACKBONE), tmp_path / "mdlm", 1, SyntheticDataModule(**data))
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(tiny_fit_args("synthetic_mdlm_compass.yaml", tmp_path / "run", *TINY_BACKBONE, *TINY_SYNTHETIC,
                       f"--model.init_args.teacher_checkpoint={mdlm}"))
    compass = load_module(tmp_path / "run" / "checkpoints" / "last.ckpt", expected_kind="compass")
    assert compass.hparams.teacher_kind == "mdlm" and compass.source_name == "mask" and compass.hparams.seq_len == 16
