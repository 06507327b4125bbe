"""benchmarks/levers.py: each lever is one arm against its twin at matched entropy, read from the frontier rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from lightning_helpers import BENCHMARKS, import_benchmark


@pytest.fixture
def levers(tmp_path, monkeypatch):
    return import_benchmark("levers", tmp_path, monkeypatch)


def row(method, ppl, se, reference="teacher-1024", **fields):
    return {"dataset": "synthetic-textlike", "source": "mask", "judge": "oracle", "steps": 8, "reference": reference,
            "method": method, "matched_gen_ppl": ppl, "matched_nll_stderr": se, "matched_reverse_ppl": ppl * 2, **fields}


def test_a_lever_is_its_arm_over_its_twin_with_the_se_of_the_log(levers):
    lever = levers.Lever("k", "synthetic-textlike", "mask", levers.m("student-shaped", compass="oracle"),
                         levers.m("student-blind"), "stage")
    rows = [row("student-blind", 10.0, 0.03), row("student-shaped", 8.0, 0.04, compass="oracle"),
            row("student-shaped", 1.0, 0.01, compass="learned"), row("student-blind", 1.0, 0.01, reference="data")]
    out = levers.lever_row(rows, lever, "teacher-1024")
    assert out["ratio"] == pytest.approx(0.8) and out["log_ratio_stderr"] == pytest.approx(0.05)
    assert out["z"] == pytest.approx(math.log(0.8) / 0.05)
    assert (out["arm_reverse_ppl"], out["twin_reverse_ppl"]) == (16.0, 20.0)


def test_an_unmeasured_arm_is_reported_and_an_ambiguous_selector_refused(levers):
    lever = levers.Lever("k", "synthetic-textlike", "mask", levers.m("student-shaped"), levers.m("student-blind"), "s")
    assert levers.lever_row([row("student-blind", 10.0, 0.03)], lever, "teacher-1024")["ratio"] == "not measured"
    two = [row("student-blind", 10.0, 0.03), row("student-shaped", 8.0, 0.04, compass="oracle"),
           row("student-shaped", 9.0, 0.04, compass="learned")]
    with pytest.raises(ValueError, match="matches 2 frontier rows"):
        levers.lever_row(two, lever, "teacher-1024")


def test_every_lever_names_one_row_of_the_stored_results(levers, monkeypatch):
    """The table is built from the committed frontier rows: each selector picks at most one, in the rows and in the
    archive. The lever every closing note cites (the averaged endpoint) is below 1, its arm and twin taken from the
    rows or, where they were moved there (measured from a tree with uncommitted changes), from the archive."""
    monkeypatch.setattr(levers.results_io, "RESULTS", Path(BENCHMARKS) / "results")
    rows = levers.read_rows("frontier")
    archived = levers.read_rows("archive/frontier")
    table = {(lv.name, ref): levers.lever_row(rows, lv, ref) for lv in levers.LEVERS for ref in levers.REFERENCES[lv.dataset]}
    for lever in levers.LEVERS:
        for reference in levers.REFERENCES[lever.dataset]:
            levers.lever_row(archived, lever, reference)
    measured = [r for r in table.values() if isinstance(r["ratio"], float)]
    assert len(measured) >= 15
    assert all(r["log_ratio_stderr"] > 0 for r in measured)
    endpoint = next(lv for lv in levers.LEVERS if lv.name.startswith("averaged endpoint over 4 sub-steps"))
    arm, twin = (levers.select(rows, endpoint, "teacher-1024", fields) or levers.select(archived, endpoint, "teacher-1024",
                                                                                        fields)
                 for fields in (endpoint.arm, endpoint.twin))
    assert levers.matched_ratio(arm, twin)[0] < 1


def test_main_writes_the_table(levers, tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    (results / "frontier.jsonl").write_text(json.dumps(row("student-blind", 10.0, 0.03, train_steps=750)) + "\n")
    levers.main()
    text = (results / "levers.md").read_text()
    assert "not measured" in text and "| lever | dataset |" in text
