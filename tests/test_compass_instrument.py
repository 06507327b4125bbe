"""The compass instrument (benchmarks/compasses.py): the state oracle gets all of its own selection gain, a random
choice about none, and the cost table counts forward-equivalents as its docstring states."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from lightning_helpers import BENCHMARKS, import_benchmark

from lightning_tsdfm.modules import load_module
from lightning_tsdfm.shaping.compasses import load_matching_compass


@given(st.integers(2, 16), st.integers(2, 40), st.integers(0, 10_000))
def test_the_oracle_gets_its_whole_gain_and_ranks_perfectly(k, b, seed):
    import importlib
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    compasses = importlib.import_module("compasses")
    values = torch.randn(k, b, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    share, _ = compasses.selection_share(values, values)
    assert share == pytest.approx(1.0)
    assert compasses.rank_correlation(values, values) == pytest.approx(1.0)
    assert compasses.rank_correlation(values, -values) == pytest.approx(-1.0)


def test_the_instrument_measures_the_oracle_at_one_and_a_random_compass_near_zero(teacher_ckpt, tmp_path, monkeypatch):
    compasses = import_benchmark("compasses", tmp_path, monkeypatch)
    teacher = load_module(teacher_ckpt, expected_kind="teacher").eval()
    named = {"oracle": load_matching_compass("oracle", teacher), "oracle-sequence": load_matching_compass("oracle-sequence", teacher),
             "random": compasses.RANDOM}  # labelled as on the command line (label=name)
    rows = compasses.measure(teacher, named, num_states=400, k=4, steps=2, seed=0)
    by = {(r["compass"], r["scoring"], r["time"]): r for r in rows}
    for time in (0.0, 0.5):
        assert by[("oracle", "energy", time)]["share"] == pytest.approx(1.0)
        assert by[("oracle", "energy", time)]["top1"] == 1.0
        random = by[("random", "random", time)]
        assert abs(random["share"]) < 4 * random["share_se"] + 0.05
        assert random["top1"] < 0.45  # chance is 1/4
        assert {("oracle-sequence", "importance", time), ("oracle-sequence", "energy", time)} <= set(by)
        assert by[("oracle-sequence", "energy", time)]["kind"] == "oracle-sequence"
        assert by[("random", "random", time)]["kind"] == "random"


@given(st.integers(2, 16), st.integers(2, 40), st.integers(0, 10_000))
def test_importance_by_the_oracles_own_weights_gets_all_of_its_gain(k, b, seed):
    import importlib

    sys.path.insert(0, str(BENCHMARKS))
    compasses = importlib.import_module("compasses")
    g = torch.Generator().manual_seed(seed)
    values, log_ratio = (torch.randn(k, b, generator=g, dtype=torch.float64) for _ in range(2))
    reference = values - log_ratio
    share, tv = compasses.importance_share(values, reference, reference)
    assert share == pytest.approx(1.0) and tv == pytest.approx(0.0, abs=1e-12)
    _, uniform_tv = compasses.importance_share(values, torch.zeros_like(values), reference)
    assert 0.0 <= uniform_tv <= 1.0


def test_the_instrument_measures_each_jump_size_and_the_oracles_importance_law_is_its_own(teacher_ckpt, tmp_path,
                                                                                           monkeypatch):
    compasses = import_benchmark("compasses", tmp_path, monkeypatch)
    teacher = load_module(teacher_ckpt, expected_kind="teacher").eval()
    named = {"oracle": load_matching_compass("oracle", teacher), "random": compasses.RANDOM}
    rows = compasses.measure(teacher, named, num_states=64, k=4, steps=2, seed=0, jump_sizes=(0.25, 0.125))
    assert {(r["time"], r["jump"]) for r in rows} == {(t, h) for t in (0.0, 0.5) for h in (0.25, 0.125)}
    for row in rows:
        if row["compass"] == "oracle":
            assert row["is_share"] == pytest.approx(1.0) and row["is_tv"] == pytest.approx(0.0, abs=1e-9)
        else:
            assert row["is_share"] is None and row["is_tv"] is None  # a random choice has no importance law


def test_the_instrument_writes_one_table_per_time(teacher_ckpt, tmp_path, monkeypatch):
    compasses = import_benchmark("compasses", tmp_path, monkeypatch)
    compasses.main(["--teacher", str(teacher_ckpt), "--compass", "oracle", "--compass", "random", "--num-states", "8",
                    "--k", "2", "--steps", "2"])
    report = (tmp_path / "results" / "compasses.md").read_text()
    assert "### t = 0.000" in report and "### t = 0.500" in report
    assert "| jump |" in report.replace("| time | jump |", "| jump |")


def test_a_run_of_other_jump_sizes_keeps_the_rows_it_does_not_measure(teacher_ckpt, tmp_path, monkeypatch):
    compasses = import_benchmark("compasses", tmp_path, monkeypatch)
    common = ["--teacher", str(teacher_ckpt), "--compass", "oracle", "--num-states", "8", "--k", "2", "--steps", "2"]
    compasses.main(common)
    compasses.main(common + ["--jump-sizes", "1/4"])
    assert sorted(compasses.jump_of(r) for r in compasses.results_io.read_rows("compasses")) == [0.25, 0.25, 0.5, 0.5]
    with pytest.raises(SystemExit):
        compasses.main(common + ["--jump-sizes", "2"])


def test_a_run_of_other_filler_draws_keeps_the_rows_it_does_not_measure(teacher_ckpt, tmp_path, monkeypatch):
    compasses = import_benchmark("compasses", tmp_path, monkeypatch)
    common = ["--teacher", str(teacher_ckpt), "--num-states", "8", "--k", "2", "--steps", "2"]
    for extra in (["--compass", "oracle", "--compass", "oracle-sequence"],
                  ["--compass", "oracle-sequence", "--filler-draws", "2,3"]):
        monkeypatch.setattr(sys, "argv", ["compasses.py", *common, *extra])  # the command each row records
        compasses.main(common + extra)
    rows = compasses.results_io.read_rows("compasses")
    measured = {(r["compass"], r["scoring"], compasses.filler_draws(r)) for r in rows}
    assert measured == {("oracle", "energy", None)} | {("oracle-sequence", scoring, m) for scoring in ("importance", "energy")
                                                       for m in (1, 2, 3)}
    assert len(rows) == 2 * len(measured)  # each at both times, none twice
    assert (tmp_path / "results" / "compasses.md").read_text().count("Command:") == 2  # one group per run


@pytest.mark.parametrize("steps, length", [(1, 5), (8, 1), (1024, 128), (16, 16)])
def test_first_hitting_forwards_is_the_expected_count_of_reveal_steps(steps, length, tmp_path, monkeypatch):
    cost = import_benchmark("cost_quality", tmp_path, monkeypatch)
    draws = torch.randint(0, steps, (20000, length), generator=torch.Generator().manual_seed(0))
    distinct = torch.tensor([len(set(row.tolist())) for row in draws[:2000]], dtype=torch.float64).mean().item()
    assert cost.first_hitting_forwards(steps, length) == pytest.approx(distinct, rel=0.03)
    assert cost.first_hitting_forwards(steps, length) <= min(steps, length) + 1e-9


def test_guided_forward_equivalents_count_the_energy_by_its_parameters(tmp_path, monkeypatch):
    cost = import_benchmark("cost_quality", tmp_path, monkeypatch)
    monkeypatch.setattr(cost, "energy_parameters", lambda name: None if name.startswith("oracle") else 50)
    guided = {"steps": 8, "sampler": "ancestral", "sampling_shaping": {"compass": "ar:lm.ckpt", "num_candidates": 16,
                                                                       "shape_from": 0.5}}
    assert cost.forward_equivalents(guided, 128, 100) == pytest.approx(8 + 4 * 16 * 0.5)
    filled = {**guided, "sampling_shaping": {**guided["sampling_shaping"], "filler_draws": 4}}
    assert cost.forward_equivalents(filled, 128, 100) == pytest.approx(8 + 4 * 16 * 4 * 0.5)  # K * M energy forwards
    early = {**guided, "sampling_shaping": {**guided["sampling_shaping"], "shape_from": 0.0, "shape_until": 0.25}}
    assert cost.forward_equivalents(early, 128, 100) == pytest.approx(8 + 2 * 16 * 0.5)  # the jumps from 0 and 1/8
    assert cost.forward_equivalents({"steps": 8, "sampler": "ancestral"}, 128, 100) == 8
    oracle = {**guided, "sampling_shaping": {"compass": "oracle", "num_candidates": 16}}
    assert cost.forward_equivalents(oracle, 128, 100) is None
    assert math.isclose(cost.forward_equivalents({"steps": 4, "sampler": "first_hitting"}, 2, 1), 4 * (1 - 0.75 ** 2))
