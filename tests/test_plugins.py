"""Plugins: discovered through entry points after `pip install`, launched from the CLI with the shipped configs,
and refused by the shaper with a clear error when they do not satisfy the Shapeable protocol."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import CompassModule, MixturePath, SyntheticDataModule, TeacherModule, TransformerConfig, make_source
from lightning_tsdfm.cli import main
from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.plugins import ENTRY_POINT_GROUP, available_plugins, load_plugins
from lightning_tsdfm.shaping import TrajectoryShaper

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_DATA = {"vocab_size": 16, "num_states": 8, "seq_len": 16, "num_train": 16, "num_val": 8, "batch_size": 8}
TINY_BACKBONE = ["--model.init_args.backbone.hidden_size=16", "--model.init_args.backbone.num_layers=1",
                 "--model.init_args.backbone.cond_size=16"]


def test_shipped_plugins_are_discovered_through_entry_points():
    assert {"mdlm", "sedd"} <= set(available_plugins())
    plugins = load_plugins()
    assert hasattr(plugins["mdlm"], "MDLMModule") and hasattr(plugins["mdlm"], "SDTTModule")
    assert hasattr(plugins["sedd"], "SEDDModule")


def _write_plugin(root: Path, name: str, entry_value: str, body: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(body)
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name.replace('_', '-')}"
        version = "0.0.1"
        [project.entry-points."{ENTRY_POINT_GROUP}"]
        {name} = "{entry_value}"
        [tool.setuptools]
        packages = ["{name}"]
    """))
    return root


@pytest.mark.slow
def test_a_pip_installed_plugin_loads_and_a_broken_one_is_skipped(tmp_path):
    site = tmp_path / "site"
    good = _write_plugin(tmp_path / "good", "tsdfm_toy", "tsdfm_toy", "MARK = 'toy loaded'\n")
    broken = _write_plugin(tmp_path / "broken", "tsdfm_broken", "tsdfm_broken.missing", "")
    for project in (good, broken):
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", str(site), str(project)], check=True)
    probe = ("import warnings; warnings.simplefilter('always')\n"
             "from lightning_tsdfm.plugins import available_plugins, load_plugins\n"
             "print(sorted(available_plugins())); print(load_plugins()['tsdfm_toy'].MARK)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(site), "PATH": ""})
    listed, mark = result.stdout.splitlines()[:2]
    assert "tsdfm_toy" in listed and "tsdfm_broken" in listed
    assert mark == "toy loaded"
    assert "plugin 'tsdfm_broken'" in result.stderr and "failed to load and is skipped" in result.stderr


class SamplesWithItsOwnDraw(L.LightningModule):
    """A model family whose sampler draws by itself: no `jump_policy` for the shaper to replace."""

    def __init__(self):
        super().__init__()
        self.save_hyperparameters({"vocab_size": 8, "seq_len": 8})
        self.path = MixturePath(make_source("mask", 8))

    def draw(self, probs):
        return torch.multinomial(probs, 1)


def test_the_shaper_refuses_a_plugin_without_the_seam():
    with pytest.raises(TypeError, match=r"cannot shape SamplesWithItsOwnDraw: it needs an attribute `jump_policy`"):
        TrajectoryShaper("unused.ckpt").setup(None, SamplesWithItsOwnDraw(), "fit")


def _tiny_config(name: str, root: Path, **model_args) -> Path:
    config = read_config(CONFIGS / name)
    checkpoint, monitor = config["trainer"]["callbacks"]
    checkpoint["init_args"]["dirpath"] = str(root / "checkpoints")
    monitor["init_args"].update(num_samples=2, steps=2)
    config["trainer"].update(accelerator="cpu", enable_progress_bar=False, default_root_dir=str(root))
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(root)
    config["model"]["init_args"].update(model_args)
    config["data"]["init_args"] = {**config["data"]["init_args"], **TINY_DATA}
    path = root / "config.yaml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_cli_fits_mdlm_then_distils_it_shaped_with_no_change_to_the_plugin(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    short = ["--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1"]
    main(["fit", "--config", str(_tiny_config("synthetic_mdlm.yaml", tmp_path / "mdlm")), *short, *TINY_BACKBONE])
    mdlm = tmp_path / "mdlm" / "checkpoints" / "last.ckpt"
    assert load_module(mdlm, expected_kind="mdlm").hparams.backbone.norm_weights

    torch.manual_seed(0)
    data = SyntheticDataModule(**TINY_DATA)
    teacher = fit_checkpoint(TeacherModule(16, 16, backbone=TransformerConfig(hidden_size=16, num_layers=1, cond_size=16)),
                             tmp_path / "teacher", 1, data)
    compass = CompassModule(str(teacher), 16, 16, backbone=TransformerConfig(hidden_size=8, num_layers=1, num_heads=2, cond_size=8))
    trainer = quick_trainer(tmp_path / "compass", 1)
    trainer.fit(compass, datamodule=data)
    trainer.save_checkpoint(tmp_path / "compass.ckpt")

    sdtt = _tiny_config("synthetic_sdtt.yaml", tmp_path / "sdtt", teacher_checkpoint=str(mdlm), teacher_steps=8,
                        num_rounds=2, steps_per_round=1)
    main(["fit", "--config", str(sdtt), *short, "--trainer.callbacks+=TrajectoryShaper",
          f"--trainer.callbacks.compass={tmp_path / 'compass.ckpt'}", "--trainer.callbacks.num_candidates=2"])
    saved = torch.load(tmp_path / "sdtt" / "checkpoints" / "last.ckpt", weights_only=False)
    shaping = next(v for k, v in saved["callbacks"].items() if k.startswith("TrajectoryShaper"))
    assert shaping["num_candidates"] == 2 and saved["tsdfm"]["kind"] == "mdlm_sdtt" and saved["sdtt"]["round"] == 1
