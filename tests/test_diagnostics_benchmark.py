"""benchmarks/diagnostics.py: every checkpoint a run kept (the documented CLI recipe), once per optimizer step, sampled at
each step count; the ratios to the first run at equal training and sampling steps."""

from __future__ import annotations

import shutil

import pytest
from lightning_helpers import TINY_BACKBONE, TINY_SYNTHETIC, import_benchmark, tiny_fit_args

from lightning_tsdfm.cli import main



@pytest.fixture
def diagnostics(tmp_path, monkeypatch):
    return import_benchmark("diagnostics", tmp_path, monkeypatch)


def test_every_kept_checkpoint_is_one_row_per_step_count(diagnostics, tmp_path):
    run = tmp_path / "teacher"
    main(tiny_fit_args("synthetic_tiny.yaml", run, *TINY_BACKBONE, *TINY_SYNTHETIC, "--trainer.callbacks+=ModelCheckpoint",
                       f"--trainer.callbacks.dirpath={run / 'diagnostics'}", "--trainer.callbacks.every_n_train_steps=1",
                       "--trainer.callbacks.save_top_k=-1", steps=3))
    twin = tmp_path / "twin"
    shutil.copytree(run / "diagnostics", twin)
    config = run / "config_synthetic_tiny.yaml"
    rows = diagnostics.run("synthetic", str(config), [f"blind:mask={run}", f"twin:mask={twin}"], ["oracle"], [1, 2],
                           num_samples=16, seed=0, batch_size=None)
    measured = [r for r in rows if r["method"] != "data"]
    assert sorted((r["method"], r["train_steps"], r["steps"]) for r in measured) == sorted(
        (m, s, n) for m in ("blind", "twin") for s in (1, 2, 3) for n in (1, 2))  # last.ckpt is step 3 once
    assert all(r["gen_ppl"] > 1 and r["entropy"] > 0 and r["nll_stderr"] > 0 for r in measured)
    ratios = diagnostics.ratio_to_first(rows, "blind")
    assert len(ratios) == 6 and all(r["ratio"] == 1.0 for r in ratios)  # the same checkpoints, the same samples
    assert "Perplexity over blind's" in (tmp_path / "results" / "diagnostics.md").read_text()
    assert (tmp_path / "results" / "diagnostics.png").is_file()


def test_a_run_without_checkpoints_is_a_clear_error(diagnostics, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="No checkpoint under"):
        diagnostics.checkpoints_by_step(tmp_path / "empty")
    with pytest.raises(SystemExit, match="expected METHOD:SOURCE=RUN_DIR"):
        diagnostics.parse_run(f"blind={tmp_path / 'empty'}")
