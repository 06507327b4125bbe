"""The GPU check (benchmarks/gpu_check.sh) dry-runs on the CPU at tiny sizes: it runs the GPU-marked tests (skipped
here), trains, shapes and samples, and writes one row per measurement, each labelled with the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_check_dry_runs_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--tiny", "--results-dir", str(tmp_path)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    rows = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    assert all(r["device"] == "cpu" and r["size"] == "tiny" and r["benchmark"] == "gpu_check" for r in rows)
    by_check = {}
    for row in rows:
        by_check.setdefault(row["check"], []).append(row)
    assert by_check["gpu_tests"][0]["status"] == "skipped"  # no CUDA device here
    sdpa, flash = by_check["train_throughput"]
    assert sdpa["status"] == "ok" and sdpa["tokens_per_second"] > 0 and sdpa["mfu"] is None  # no peak for a CPU
    assert flash["status"].startswith("skipped")
    assert [r["k"] for r in by_check["shaping_cost"]] == [None, 1, 4, 8]
    assert all(r["seconds_per_step"] > 0 for r in by_check["shaping_cost"])
    assert [r["steps"] for r in by_check["sampling_speed"]] == [1024, 8]
    assert by_check["sampling_speed"][1]["speedup_vs_teacher"] > 1
    assert (tmp_path / "gpu_check.md").read_text().startswith("| check |")
