"""OPDLMModule: the arms train, the teacher stays out of the checkpoint, a wrong teacher is a clear error, shaping
with one candidate is blind training bit for bit, a resumed run is the same run, and a saved student samples."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import CausalLMModule, SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.shaping import TrajectoryShaper

tsdfm_opdlm = pytest.importorskip("tsdfm_opdlm", reason="the OPDLM plugin is installed by `make install`")
from tsdfm_opdlm import OPDLMModule  # noqa: E402

VOCAB, LEN = 8, 8
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)
ARMS = {
    "opdlm": {},
    "scratch-data": dict(init="scratch", completions="data", states="random", targets="data"),
    "converted-data": dict(completions="data", states="random", targets="data"),
    "converted-off-policy": dict(completions="data", states="random", targets="teacher"),
    "rollout-random-masks": dict(states="random"),
}


def _datamodule(batches: int = 2) -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=4, seq_len=LEN, num_train=4 * batches, num_val=4, batch_size=4)


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory) -> str:
    torch.manual_seed(0)
    module = CausalLMModule(VOCAB, LEN, backbone=BACKBONE, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    return str(fit_checkpoint(module, tmp_path_factory.mktemp("causal"), 3, _datamodule()))


def _opdlm(teacher: str, **kwargs) -> OPDLMModule:
    torch.manual_seed(0)
    settings = dict(block_size=4, steps_per_block=2, threshold=0.9, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    settings.update(kwargs)
    return OPDLMModule(teacher, VOCAB, LEN, **settings)


def _weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_every_arm_trains_and_keeps_the_teacher_out_of_its_checkpoint(arm, causal_lm, tmp_path):
    module = _opdlm(causal_lm, **ARMS[arm])
    before = {k: v.clone() for k, v in module.state_dict().items()}
    path = fit_checkpoint(module, tmp_path, 2, _datamodule())
    assert any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    saved = torch.load(path, weights_only=False)
    assert saved["tsdfm"]["kind"] == "opdlm"
    assert all(key.startswith("net.") for key in saved["state_dict"])
    assert saved["state_dict"]["net.embed.weight"].shape[0] == VOCAB + 1


def test_the_converted_student_starts_from_the_teacher_weights(causal_lm):
    teacher = load_module(causal_lm)
    student = _opdlm(causal_lm).net
    torch.testing.assert_close(student.embed.weight[:VOCAB], teacher.net.embed.weight)
    torch.testing.assert_close(student.blocks[0].qkv.weight, teacher.net.blocks[0].qkv.weight)
    scratch = _opdlm(causal_lm, **ARMS["scratch-data"]).net
    assert not torch.equal(scratch.blocks[0].qkv.weight, teacher.net.blocks[0].qkv.weight)


def test_a_teacher_that_is_not_a_causal_lm_is_a_clear_error(tmp_path):
    torch.manual_seed(0)
    diffusion = TeacherModule(VOCAB, LEN, backbone=BACKBONE)
    path = fit_checkpoint(diffusion, tmp_path, 1, _datamodule())
    with pytest.raises(UserError, match="causal LM.*'teacher' checkpoint"):
        _opdlm(str(path))


def test_inconsistent_arms_are_refused(causal_lm):
    with pytest.raises(UserError, match="completions=rollout"):
        _opdlm(causal_lm, completions="data", states="trajectory")
    with pytest.raises(UserError, match="targets=data"):
        _opdlm(causal_lm, targets="data")
    with pytest.raises(UserError, match="multiple of block_size"):
        _opdlm(causal_lm, block_size=3, steps_per_block=1)


def test_one_candidate_shapes_the_rollouts_into_blind_training_bit_for_bit(causal_lm, tmp_path):
    blind = _opdlm(causal_lm)
    quick_trainer(tmp_path / "blind", 2).fit(blind, datamodule=_datamodule())
    single = _opdlm(causal_lm)
    quick_trainer(tmp_path / "k1", 2, [TrajectoryShaper("oracle", num_candidates=1)]).fit(single, datamodule=_datamodule())
    assert _weights_equal(blind, single)
    shaped = _opdlm(causal_lm)
    shaper = TrajectoryShaper("oracle", num_candidates=4)
    quick_trainer(tmp_path / "k4", 2, [shaper]).fit(shaped, datamodule=_datamodule())
    assert not _weights_equal(blind, shaped)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(causal_lm, tmp_path):
    straight = _opdlm(causal_lm)
    quick_trainer(tmp_path / "a", 4).fit(straight, datamodule=_datamodule())
    saver = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=1, save_top_k=-1, filename="{step}")
    quick_trainer(tmp_path / "b", 3, [saver]).fit(_opdlm(causal_lm), datamodule=_datamodule())
    resumed = _opdlm(causal_lm)
    quick_trainer(tmp_path / "c", 4).fit(resumed, datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / "step=3.ckpt")
    assert _weights_equal(straight, resumed)


def test_a_saved_student_samples_without_its_teacher_and_the_teacher_sampler_decodes(causal_lm, tmp_path):
    path = fit_checkpoint(_opdlm(causal_lm), tmp_path, 1, _datamodule())
    student = load_module(path, expected_kind="opdlm")
    assert student._teacher is None  # rebuilt from its hyper-parameters, the teacher file untouched
    g = torch.Generator().manual_seed(0)
    samples = student.sample(5, 4, generator=g, batch_size=2)  # 2 blocks, 2 steps each
    assert samples.shape == (5, LEN) and samples.max() < VOCAB
    again = student.sample(5, 4, generator=torch.Generator().manual_seed(0), batch_size=2)
    assert torch.equal(samples, again)
    teacher_samples = student.sample(3, LEN, generator=g, sampler="teacher")
    assert teacher_samples.shape == (3, LEN) and teacher_samples.max() < VOCAB
    with pytest.raises(UserError, match="multiple"):
        student.sample(2, 3)
