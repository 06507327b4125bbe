"""benchmarks/conditional.py end to end on a tiny text-like language: a data row and a model row per template, the
known tokens kept, every row with its command, sample count, seed and entropy, and the table."""

from __future__ import annotations

import pytest
import torch
import yaml
from lightning_helpers import TINY_TEACHER, fit_checkpoint, import_benchmark

from lightning_tsdfm import SyntheticDataModule, TeacherModule
from lightning_tsdfm.modules.optim import OptimizerConfig

DATA = {"family": "textlike", "vocab_size": 16, "num_topics": 2, "num_states": 4, "function_states": 1,
        "function_vocab": 4, "emissions_per_state": 2, "seq_len": 8, "num_train": 8, "num_val": 4, "batch_size": 4}


@pytest.fixture
def conditional(tmp_path, monkeypatch):
    return import_benchmark("conditional", tmp_path, monkeypatch)


def test_rows_for_each_template_and_model(conditional, tmp_path):
    torch.manual_seed(0)
    teacher = TeacherModule(16, 8, backbone=TINY_TEACHER, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    ckpt = fit_checkpoint(teacher, tmp_path / "teacher", 2, SyntheticDataModule(**DATA))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "lightning_tsdfm.SyntheticDataModule", "init_args": DATA}}))
    rows = conditional.run("synthetic-textlike", str(config), ["prefix:3", "infill:2:6"],
                           [f"teacher:2,16:first_hitting={ckpt}"], num_conditions=12, seed=0, batch_size=5,
                           samples_dir=str(tmp_path / "samples"))
    assert {(r["template"], r["method"], r["steps"]) for r in rows} == {
        (t, m, s) for t in ("prefix:3", "infill:2:6") for m, s in (("data", None), ("teacher", 2), ("teacher", 16))}
    for r in rows:
        assert r["cond_ppl"] > 1 and r["reverse_ppl"] > 1 and r["entropy"] > 0 and r["nll_stderr"] > 0
        assert r["n_samples"] == 12 and r["seed"] == 0 and "conditional.py" in r["command"] and r["commit"]
        assert (r["known_tokens"], r["filled_tokens"]) == ((3, 5) if r["template"] == "prefix:3" else (4, 4))
    table = (tmp_path / "results" / "conditional.md").read_text()
    assert table.count("| synthetic-textlike |") == 6 and "## Commands" in table
    assert len(list((tmp_path / "samples").glob("*.jsonl"))) == 4
    with pytest.raises(SystemExit, match="prefix:P"):
        conditional.known_positions("prefix:8", 8)
