"""Checkpoints written by earlier versions still load: hyper-parameters saved under earlier names (the flat
optimizer arguments, SDTT's initial_steps) are read under the current ones, a kind spelled with a hyphen as its
one spelling."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_tsdfm.data import SyntheticDataModule
from lightning_tsdfm.modules import TeacherModule, load_module, read_checkpoint
from lightning_tsdfm.modules.checkpoint import canonical_kind, upgraded_hparams
from lightning_tsdfm.modules.optim import OptimizerConfig


def _saved_teacher(tmp_path, tiny_config):
    dm = SyntheticDataModule(vocab_size=16, num_states=8, seq_len=8, num_train=16, num_val=8, batch_size=8)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    teacher = TeacherModule(16, 8, backbone=tiny_config, optimizer=OptimizerConfig(lr=2e-3, warmup_steps=7))
    trainer.fit(teacher, datamodule=dm)
    path = tmp_path / "teacher.ckpt"
    trainer.save_checkpoint(path)
    return path, teacher


def _rewrite_hparams(path, edit) -> None:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    edit(checkpoint["hyper_parameters"])
    torch.save(checkpoint, path)


def test_flat_optimizer_hparams_of_an_earlier_version_load_as_the_optimizer_group(tmp_path, tiny_config):
    path, teacher = _saved_teacher(tmp_path, tiny_config)

    def flatten(hparams: dict) -> None:
        group = hparams.pop("optimizer")
        hparams.update(lr=group.lr, weight_decay=group.weight_decay, warmup_steps=group.warmup_steps)

    _rewrite_hparams(path, flatten)
    loaded = load_module(path)
    assert loaded.optimizer_config == OptimizerConfig(lr=2e-3, weight_decay=0.0, warmup_steps=7)
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), loaded.state_dict().values()))


def test_a_kind_spelled_with_a_hyphen_reads_as_its_one_spelling(tmp_path):
    path = tmp_path / "sdtt.ckpt"
    header = {"kind": "mdlm-sdtt", "class_path": "tsdfm_mdlm.sdtt.SDTTModule", "data_card": None}
    torch.save({"tsdfm": header, "state_dict": {}}, path)
    assert canonical_kind("mdlm-sdtt") == "mdlm_sdtt"
    for expected in ("mdlm_sdtt", "mdlm-sdtt"):
        assert read_checkpoint(path, expected_kind=expected)["tsdfm"]["kind"] == "mdlm_sdtt"


def test_renamed_hparams_of_an_earlier_version_are_read_under_their_new_names():
    sdtt = pytest.importorskip("tsdfm_mdlm").SDTTModule
    assert upgraded_hparams(sdtt, {"initial_steps": 16, "lr": 1e-3}) == {
        "teacher_steps": 16, "optimizer": {"lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 200}}
    assert upgraded_hparams(sdtt, {"teacher_steps": 16, "optimizer": OptimizerConfig()}) == {}


def test_a_run_of_an_earlier_version_resumes_through_the_cli(tmp_path):
    """``tsdfm fit --ckpt_path`` on a checkpoint whose optimizer arguments were saved flat: Lightning reads the
    checkpoint's hyper-parameters into the config, and the old names must arrive as today's group."""
    from lightning_helpers import TINY_BACKBONE, TINY_SYNTHETIC, tiny_fit_args

    from lightning_tsdfm.cli import main

    first = tmp_path / "first"
    main(tiny_fit_args("synthetic_tiny.yaml", first, *TINY_BACKBONE, *TINY_SYNTHETIC, steps=2))
    last = first / "checkpoints" / "last.ckpt"

    def flatten(hparams: dict) -> None:
        group = hparams.pop("optimizer")
        hparams.update(lr=group["lr"], weight_decay=group["weight_decay"], warmup_steps=7)

    _rewrite_hparams(last, flatten)
    resumed = tmp_path / "resumed"
    main(tiny_fit_args("synthetic_tiny.yaml", resumed, *TINY_BACKBONE, *TINY_SYNTHETIC, f"--ckpt_path={last}", steps=3))
    checkpoint = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 3
    assert checkpoint["hyper_parameters"]["optimizer"]["warmup_steps"] == 7
    assert "lr" not in checkpoint["hyper_parameters"]
