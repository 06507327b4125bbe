"""FLM and FMLM rows in benchmarks/quality.py (plain, temperature sweep, matched entropy) and benchmarks/speed.py:
the Gaussian source, and FMLM's stochasticity g in every row."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning_helpers import fit_checkpoint

from lightning_tsdfm import SyntheticDataModule, TransformerConfig
from lightning_tsdfm.modules.optim import OptimizerConfig

tsdfm_flm = pytest.importorskip("tsdfm_flm", reason="the FLM plugin is installed by `make install`")
from tsdfm_flm import FLMModule, FMLMModule  # noqa: E402

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
DATA = {"vocab_size": 8, "num_states": 4, "seq_len": 8, "num_train": 8, "num_val": 4, "batch_size": 4}
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, cond_size=16)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("flm_bench")
    torch.manual_seed(0)
    data = SyntheticDataModule(**DATA)
    flm = FLMModule(8, 8, backbone=BACKBONE, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    flm = fit_checkpoint(flm, root / "flm", 3, data)
    fmlm = FMLMModule(str(flm), 8, 8, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    fmlm = fit_checkpoint(fmlm, root / "fmlm", 2, SyntheticDataModule(**DATA))
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "lightning_tsdfm.SyntheticDataModule", "init_args": DATA}}))
    return flm, fmlm, config


@pytest.fixture
def benchmarks(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    quality, speed = importlib.import_module("quality"), importlib.import_module("speed")
    monkeypatch.setattr(quality.results_io, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(speed.results_io, "RESULTS", tmp_path / "results")
    return quality, speed


def test_quality_rows_with_matched_entropy_record_the_source_and_g(benchmarks, checkpoints, tmp_path, monkeypatch):
    quality, _ = benchmarks
    flm, fmlm, config = checkpoints
    monkeypatch.setattr(sys, "argv", ["quality.py"])
    rows = quality.run("frontier", "synthetic", str(config),
                       [f"flm:gaussian:2,4={flm}", f"fmlm:gaussian:1,2={fmlm}", f"fmlm-g0:gaussian:2:flow_map_g0={fmlm}"],
                       ["oracle"], num_samples=32, seed=0, batch_size=None, samples_dir=str(tmp_path / "samples"),
                       temperatures=(0.5, 1.0, 2.0), frontier=True)
    sweeps = [r for r in rows if r["method"] != "data" and not r.get("reference")]
    assert {r["source"] for r in sweeps} == {"gaussian"}
    assert all(r["entropy"] > 0 and r["gen_ppl"] > 1 for r in sweeps)
    assert {(r["method"], r.get("g")) for r in sweeps} == {("flm", None), ("fmlm", 0.8), ("fmlm-g0", 0.0)}
    matched = [r for r in rows if r.get("reference") == "data"]
    assert {(r["method"], r["steps"]) for r in matched} == {
        ("flm", 2), ("flm", 4), ("fmlm", 1), ("fmlm", 2), ("fmlm-g0", 2)}
    assert {r["g"] for r in matched if r["method"] == "fmlm"} == {0.8}
    assert "| g |" in (tmp_path / "results" / "frontier.md").read_text()


def test_speed_rows_time_fmlm_against_flm_and_record_g(benchmarks, checkpoints, tmp_path, monkeypatch):
    _, speed = benchmarks
    flm, fmlm, _ = checkpoints
    monkeypatch.setattr(sys, "argv", ["speed.py", "--dataset", "synthetic-flm", "--batch-size", "4", "--repeats", "2",
                                      "--model", f"flm:gaussian:16={flm}", "--model", f"fmlm:gaussian:1={fmlm}"])
    speed.main()
    rows = [json.loads(line) for line in (tmp_path / "results" / "speed.jsonl").read_text().splitlines()]
    assert [(r["method"], r["steps"], r.get("g")) for r in rows] == [("flm", 16, None), ("fmlm", 1, 0.8)]
    assert rows[1]["speedup_vs_first"] > 1 and rows[0]["sampler"] == "euler"
