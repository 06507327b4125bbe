"""The 170M FLM and FMLM configs (configs/owt_170m_flm.yaml, owt_170m_fmlm.yaml) build at full width (GPT-2
tokenizer, 50257-dimensional states) and take one optimizer step on the CPU, as the other 170M configs do
(tests/test_owt_170m_configs.py: reduced length, batch 1, a small local corpus)."""

from __future__ import annotations

import pytest
from test_owt_170m_configs import assert_170m, assert_one_step, corpus, fit, release_memory, scaled_down  # noqa: F401

pytestmark = pytest.mark.slow
pytest.importorskip("tsdfm_flm", reason="the FLM plugin is installed by `make install`")


def test_flm_then_fmlm_configs(tmp_path, corpus):  # noqa: F811 - the corpus fixture
    cli = fit(scaled_down("owt_170m_flm.yaml", tmp_path / "flm", corpus, checkpoint=True))
    assert_one_step(cli)
    assert_170m(cli.model)
    assert cli.model.logit_soft_cap == 30.0
    teacher = tmp_path / "flm" / "checkpoints" / "last.ckpt"
    cli = fit(scaled_down("owt_170m_fmlm.yaml", tmp_path / "fmlm", corpus, f"--model.init_args.teacher_checkpoint={teacher}"))
    assert_one_step(cli)
    assert_170m(cli.model)  # the teacher's width plus the step embedding; the frozen teacher is not counted
