"""The shipped configs: validation counts steps across epochs (a corpus of any size fits), and the demo's blind
and shaped students train the same number of steps whatever the machine's speed."""

from __future__ import annotations

import sys

import pytest
import torch
import yaml
from lightning_helpers import CONFIGS, TINY_BACKBONE, tiny_fit_args

from lightning_tsdfm.cli import main


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_validation_counts_steps_across_epochs(config):
    trainer = yaml.safe_load((CONFIGS / config).read_text())["trainer"]
    if isinstance(trainer.get("val_check_interval"), int):
        assert "check_val_every_n_epoch" in trainer and trainer["check_val_every_n_epoch"] is None, config


def test_the_demo_students_are_bounded_by_steps_only():
    trainer = yaml.safe_load((CONFIGS / "demo_text_student.yaml").read_text())["trainer"]
    assert trainer["max_steps"] > 0 and trainer.get("max_time") is None


def test_text_config_fits_a_small_corpus_of_ones_own(tmp_path, monkeypatch):
    """A corpus with far fewer batches per epoch than val_check_interval trains (Lightning refused it before)."""
    words = "and the light was good in the beginning of days water earth said let there be".split()
    corpus = tmp_path / "my.txt"
    corpus.write_text("\n\n".join(" ".join(words[(i * 7 + j) % len(words)] for j in range(40)) for i in range(30)))
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(tiny_fit_args("text_tiny.yaml", tmp_path / "run", *TINY_BACKBONE, f"--data.init_args.corpus={corpus}",
                       f"--data.init_args.cache_dir={tmp_path / 'cache'}", "--data.init_args.bpe_vocab_size=300",
                       "--data.init_args.seq_len=16", "--data.init_args.batch_size=4", steps=6))
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 6
