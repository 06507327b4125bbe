"""benchmarks/demo_report.py: the demo's one page, its models at matched entropy with their cost and the seconds of
each stage, from the rows and the stage files the Makefile writes."""

from __future__ import annotations

import pytest
from lightning_helpers import import_benchmark
from test_shaper import teacher_ckpt  # noqa: F401 (fixture)


def _rows(checkpoint: str) -> list[dict]:
    common = {"dataset": "web-bible", "judge": "smollm2-135m", "checkpoint": checkpoint, "sampler": "ancestral",
              "n_samples": 64, "seed": 0}
    sweeps = [{**common, "method": method, "steps": steps, "sampling_temperature": 1.0, "seconds_per_sequence": seconds}
              for method, steps, seconds in (("teacher", 1024, 0.4), ("student-blind", 8, 0.05))]
    matched = [{**common, "method": method, "steps": steps, "reference": "teacher-1024", "reference_entropy": 3.79,
                "matched_gen_ppl": ppl, "matched_nll_stderr": 0.06}
               for method, steps, ppl in (("teacher", 1024, 1000.0), ("student-blind", 8, 1200.0))]
    return sweeps + matched


def test_the_page_has_the_matched_table_and_each_stage_seconds(teacher_ckpt, tmp_path, monkeypatch):
    demo = import_benchmark("demo_report", tmp_path, monkeypatch)
    directory = tmp_path / "demo"
    directory.mkdir()
    monkeypatch.setattr(demo.results_io, "RESULTS", directory)
    demo.results_io.replace_rows("cost_quality", _rows(str(teacher_ckpt)))
    for stage, seconds in (("teacher", 360), ("path_lm", 150), ("student_blind", 240), ("quality", 150)):
        (directory / f"{stage}.seconds").write_text(f"{seconds}\n")
    demo.main([str(directory)])
    page = (directory / "demo.md").read_text()
    assert "| student-blind | 8 |" in page and "| 1.200 |" in page  # 1200 / 1000 against the 1024-step teacher
    assert "| total | 900 |" in page and "3.790 nats (smollm2-135m judge, 64 samples, seed 0)" in page


def test_it_says_what_to_run_when_there_are_no_rows(tmp_path, monkeypatch):
    demo = import_benchmark("demo_report", tmp_path, monkeypatch)
    with pytest.raises(SystemExit, match="run the quality stage of `make demo` first"):
        demo.main([str(tmp_path)])
