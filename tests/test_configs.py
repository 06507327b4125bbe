"""The shipped configs: validation counts steps across epochs (a corpus of any size fits), the demo's blind
and shaped students train the same number of steps whatever the machine's speed, and the run directory is
written once (``trainer.default_root_dir``; the logger's save_dir and the checkpoint dirpath follow it)."""

from __future__ import annotations

import sys

import lightning as L
import pytest
import torch
import yaml
from lightning_helpers import CONFIGS, TINY_BACKBONE, TINY_SYNTHETIC, tiny_fit_args

from lightning_tsdfm.cli import TsdfmCLI, main
from lightning_tsdfm.run_directory import place_checkpoints_in_run_directory


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


class _ParseOnly(TsdfmCLI):
    """The CLI up to instantiation: the parsed config, after the run directory is placed."""

    def instantiate_classes(self) -> None:
        pass


def _callback_dirpaths(trainer) -> list:
    return [callback.init_args.dirpath for callback in trainer.callbacks
            if callback.class_path.endswith("Checkpoint")]


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_the_run_directory_is_written_once_and_lands_in_all_three_places(config, tmp_path):
    raw = yaml.safe_load((CONFIGS / config).read_text())["trainer"]
    assert "save_dir" not in raw["logger"]["init_args"], config
    assert all("dirpath" not in callback.get("init_args", {}) for callback in raw["callbacks"]), config
    root = str(tmp_path / "moved")
    parsed = _ParseOnly(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                        run=False, args=["--config", str(CONFIGS / config), f"--trainer.default_root_dir={root}"])
    trainer = parsed.config.trainer
    assert trainer.default_root_dir == root
    assert trainer.logger.init_args.save_dir == root
    assert _callback_dirpaths(trainer) == [f"{root}/checkpoints"]


def test_the_logger_follows_the_run_directory_and_a_checkpoint_dirpath_given_is_kept(tmp_path):
    root = tmp_path / "run"
    args = ["--config", str(CONFIGS / "synthetic_sedd.yaml"), f"--trainer.default_root_dir={root}",  # checkpoint last
            f"--trainer.callbacks.dirpath={tmp_path / 'elsewhere'}", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    trainer = _ParseOnly(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                         run=False, args=args).config.trainer
    assert trainer.logger.init_args.save_dir == str(root)
    assert _callback_dirpaths(trainer) == [str(tmp_path / "elsewhere")]
    without_root = yaml.safe_load("{default_root_dir: null, callbacks: [{class_path: lightning_tsdfm.FinalCheckpoint, "
                                  "init_args: {dirpath: null}}]}")
    place_checkpoints_in_run_directory(without_root)  # no run directory: Lightning's own default
    assert without_root["callbacks"][0]["init_args"]["dirpath"] is None


def test_a_fit_writes_logs_and_checkpoints_under_the_one_run_directory(tmp_path, monkeypatch):
    """`tsdfm fit --config configs/synthetic_tiny.yaml --trainer.default_root_dir=ROOT` (tiny): the checkpoint, the
    TensorBoard logs and the saved config all land under ROOT, and the saved config names the run directory and
    the checkpoint dirpath."""
    root = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(tiny_fit_args("synthetic_tiny.yaml", root, *TINY_BACKBONE, *TINY_SYNTHETIC))
    assert (root / "checkpoints" / "last.ckpt").is_file()
    (saved,) = root.glob("logs/version_*/config.yaml")
    trainer = yaml.safe_load(saved.read_text())["trainer"]
    assert trainer["default_root_dir"] == str(root)  # the logger's save_dir is linked to it
    assert [c["init_args"]["dirpath"] for c in trainer["callbacks"] if "dirpath" in c["init_args"]] == [
        str(root / "checkpoints")]
