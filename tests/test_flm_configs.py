"""The shipped FLM and FMLM configs run through `tsdfm fit` (tiny sizes): an FLM, then its FMLM."""

from __future__ import annotations

import sys

import pytest
import torch
from lightning_helpers import TINY_BACKBONE, TINY_SYNTHETIC, tiny_fit_args

from lightning_tsdfm.cli import main
from lightning_tsdfm.modules import load_module

pytest.importorskip("tsdfm_flm", reason="the FLM plugin is installed by `make install`")


def test_synthetic_flm_then_fmlm_fit_from_the_configs(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(tiny_fit_args("synthetic_flm.yaml", tmp_path / "flm", *TINY_BACKBONE, *TINY_SYNTHETIC, steps=3))
    teacher = tmp_path / "flm" / "checkpoints" / "last.ckpt"
    main(tiny_fit_args("synthetic_fmlm.yaml", tmp_path / "fmlm", *TINY_SYNTHETIC,
                       f"--model.init_args.teacher_checkpoint={teacher}", steps=3))
    student = load_module(tmp_path / "fmlm" / "checkpoints" / "last.ckpt", expected_kind="fmlm")
    assert torch.load(tmp_path / "fmlm" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 3
    assert student.sample(2, 1).shape == (2, 16)
