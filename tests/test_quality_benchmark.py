"""benchmarks/quality.py end to end on a tiny teacher: temperature sweeps, the exact-posterior sampler, the
mode-coverage figures and the matched-entropy rows."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import yaml
from lightning_helpers import fit_checkpoint, import_benchmark

from lightning_tsdfm import SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.modules.optim import OptimizerConfig

DATA = {"vocab_size": 8, "num_states": 4, "seq_len": 8, "num_train": 8, "num_val": 4, "batch_size": 4}


@pytest.fixture
def quality(tmp_path, monkeypatch):
    return import_benchmark("quality", tmp_path, monkeypatch)


def test_frontier_mode_writes_sweeps_and_matched_rows(quality, tmp_path):
    torch.manual_seed(0)
    teacher = TeacherModule(8, 8, backbone=TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, cond_size=16),
                            optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    ckpt = fit_checkpoint(teacher, tmp_path / "teacher", 3, SyntheticDataModule(**DATA))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "lightning_tsdfm.SyntheticDataModule", "init_args": DATA}}))
    rows = quality.run("frontier", "synthetic", str(config),
                       [f"teacher:mask:2,1024:first_hitting={ckpt}", "oracle-denoiser:mask:2=oracle"], ["oracle"],
                       num_samples=64, seed=0, batch_size=None, samples_dir=str(tmp_path / "samples"),
                       temperatures=(0.25, 1.0, 4.0), frontier=True)
    sweeps = [r for r in rows if r["method"] != "data" and not r.get("reference")]
    assert {(r["method"], r["steps"], r["sampling_temperature"]) for r in sweeps} == {
        (m, s, t) for m, s in (("teacher", 2), ("teacher", 1024), ("oracle-denoiser", 2)) for t in (0.25, 1.0, 4.0)}
    assert all(r["reverse_ppl"] > 1 and 0 < r["distinct_4"] <= 1 for r in sweeps)
    by_t = {r["sampling_temperature"]: r for r in sweeps if (r["method"], r["steps"]) == ("teacher", 2)}
    assert by_t[0.25]["entropy"] < by_t[4.0]["entropy"]
    matched = [r for r in rows if r.get("reference")]
    assert {r["reference"] for r in matched} == {"data", "teacher-1024"}
    teacher_1024 = next(r for r in matched if (r["method"], r["steps"], r["reference"]) == ("teacher", 1024, "teacher-1024"))
    assert teacher_1024["matched_gen_ppl"] == pytest.approx(
        next(r["gen_ppl"] for r in sweeps if (r["method"], r["steps"], r["sampling_temperature"]) == ("teacher", 1024, 1.0)))
    for r in matched:
        if r["matched_gen_ppl"] is not None:
            ppl = [s["gen_ppl"] for s in sweeps if (s["method"], s["steps"]) == (r["method"], r["steps"])]
            assert min(ppl) <= r["matched_gen_ppl"] <= max(ppl) and r["matched_nll_stderr"] > 0
    assert (tmp_path / "results" / "frontier.md").read_text().count("teacher-1024") >= 3
    assert (tmp_path / "results" / "frontier.png").is_file()
    # one more temperature into the same file without --frontier keeps the matched rows and their report
    quality.run("frontier", "synthetic", str(config), [f"teacher:mask:2={ckpt}"], ["oracle"], num_samples=64, seed=0,
                batch_size=None, samples_dir=str(tmp_path / "samples"), keep_other_models=True, temperatures=(2.0,))
    report = (tmp_path / "results" / "frontier.md").read_text()
    assert "## Matched entropy" in report and "## Against the blind student" in report


def test_ratio_rows_compare_each_model_with_the_blind_student_where_both_are_matched(quality):
    def row(method, steps, ppl, se, reverse=None, reference="data"):
        return {"dataset": "d", "source": "mask", "steps": steps, "judge": "oracle", "reference": reference,
                "method": method, "matched_gen_ppl": ppl, "matched_nll_stderr": se, "matched_reverse_ppl": reverse}

    matched = [row("student-blind", 8, 10.0, 0.03, 20.0), row("student-shaped", 8, 8.0, 0.04, 19.0),
               row("teacher", 1024, 9.0, 0.02), row("student-shaped", 4, 7.0, 0.01),  # no blind at 4 steps
               row("student-shaped", 8, 5.0, 0.01, reference="teacher-1024")]  # no blind at that reference
    (ratio,) = quality.ratio_rows(matched)
    assert ratio["method"] == "student-shaped" and ratio["ratio_to_blind"] == pytest.approx(0.8)
    assert ratio["log_ratio_stderr"] == pytest.approx(0.05)
    assert ratio["ratio_to_teacher_1024"] == pytest.approx(8 / 9)
    assert (ratio["matched_reverse_ppl"], ratio["blind_reverse_ppl"]) == (19.0, 20.0)


@pytest.fixture
def recorded_runs(quality, monkeypatch) -> list[tuple]:
    """The arguments of every ``run`` that ``quality.main()`` makes (none is carried out)."""
    calls = []
    monkeypatch.setattr(quality, "run", lambda *args: calls.append(args))
    return calls


def test_frontier_takes_one_temperature_only_for_the_reference(quality, recorded_runs, monkeypatch, tmp_path, capsys):
    """--frontier with T = 1 alone: refused for a few-step model (no sweep), accepted for a 1024-step one (its row
    is the reference entropy)."""
    calls = recorded_runs
    base = ["quality.py", "--dataset", "synthetic", "--config", "c.yaml", "--frontier", "--temperatures", "1.0",
            "--results-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [*base, "--model", "teacher:mask:8=t.ckpt"])
    with pytest.raises(SystemExit):
        quality.main()
    assert "--frontier needs a sweep" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", [*base, "--model", "teacher:mask:1024=t.ckpt"])
    quality.main()
    assert len(calls) == 1 and calls[0][11] is True and calls[0][12] is None  # frontier, no step sizes


def test_step_sizes_set_every_models_step_count(quality, recorded_runs, monkeypatch, tmp_path, capsys):
    calls = recorded_runs
    base = ["quality.py", "--dataset", "synthetic", "--config", "c.yaml", "--results-dir", str(tmp_path),
            "--step-sizes", "1/4,1/4,1/2"]
    monkeypatch.setattr(sys, "argv", [*base, "--model", "teacher:mask:8=t.ckpt"])
    with pytest.raises(SystemExit):
        quality.main()
    assert "--step-sizes gives 3 steps: every --model must sample 3 steps" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", [*base, "--model", "teacher:mask:3=t.ckpt"])
    quality.main()
    assert calls[0][12] == [0.25, 0.25, 0.5]


def test_a_model_guided_while_it_samples_may_name_the_time_its_shaping_starts(quality):
    assert quality.parse_model("s:mask:8=a.ckpt@oracle:16:importance") == (
        "s", "mask", [8], "a.ckpt", None, {"compass": "oracle", "num_candidates": 16, "policy": "importance"})
    assert quality.parse_model("s:mask:8,16=a.ckpt@c:/x.ckpt:4:argmin:0.5")[5] == {
        "compass": "c:/x.ckpt", "num_candidates": 4, "policy": "argmin", "shape_from": 0.5}
    assert quality.parse_model("s:mask:8=a.ckpt@c:/x.ckpt:4:argmin")[5]["compass"] == "c:/x.ckpt"
    with pytest.raises(SystemExit, match="SHAPE_FROM"):
        quality.parse_model("s:mask:8=a.ckpt@oracle:16:importance:late")


def test_a_guided_model_may_name_any_other_shaping_setting(quality):
    assert quality.parse_model("s:mask:8=a.ckpt@ar:c:/lm.ckpt:4:importance:0.25:filler_draws=8")[5] == {
        "compass": "ar:c:/lm.ckpt", "num_candidates": 4, "policy": "importance", "shape_from": 0.25, "filler_draws": 8}
    assert quality.parse_model("s:mask:8=a.ckpt@oracle:16:importance:shape_from=0.5")[5]["shape_from"] == 0.5
    for wrong in ("fillers=8", "num_candidates=4", "filler_draws=many"):
        with pytest.raises(SystemExit, match="NAME=VALUE"):
            quality.parse_model(f"s:mask:8=a.ckpt@oracle:16:importance:{wrong}")


def test_a_matched_row_keeps_the_commit_and_command_of_its_sweep(quality):
    """Matched rows are recomputed for every stored sweep on each frontier run; each keeps the provenance of the
    run that sampled its sweep, not of the run that recomputed it."""
    def sweep(method, temperature, entropy, ppl, commit):
        return {"method": method, "source": "mask", "steps": 8, "judge": "oracle", "sampling_temperature": temperature,
                "entropy": entropy, "gen_ppl": ppl, "nll_stderr": 0.01, "commit": commit, "command": f"sampled {method}"}

    data = {"method": "data", "judge": "oracle", "entropy": 2.5, "n_samples": 64}
    rows = [data, sweep("old-model", 0.8, 2.0, 5.0, "aaaa"), sweep("old-model", 1.0, 3.0, 9.0, "aaaa"),
            sweep("new-model", 0.8, 2.1, 6.0, "bbbb"), sweep("new-model", 1.0, 2.9, 8.0, "bbbb")]
    matched = {r["method"]: r for r in quality.frontier_rows(rows, {"commit": "cccc", "command": "recomputed"})}
    assert (matched["old-model"]["commit"], matched["old-model"]["command"]) == ("aaaa", "sampled old-model")
    assert matched["new-model"]["commit"] == "bbbb"
    assert matched["old-model"]["matched_gen_ppl"] == pytest.approx(math.exp((math.log(5) + math.log(9)) / 2))
