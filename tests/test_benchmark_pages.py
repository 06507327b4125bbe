"""benchmarks/pages.py: every page of benchmarks/results, and its index, generated from the rows alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lightning_helpers import BENCHMARKS

RESULTS = Path(BENCHMARKS) / "results"


@pytest.fixture
def pages(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import pages

    return pages


def _pages_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.md"))}


def test_generating_twice_gives_the_same_bytes_and_the_index_lists_the_archive(pages, tmp_path):
    row = {"benchmark": "speed", "dataset": "synthetic", "source": "mask", "method": "teacher", "steps": 8,
           "seconds_per_sequence": 0.5, "commit": "abc", "command": "python benchmarks/speed.py"}
    (tmp_path / "speed.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "unknown.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "speed.jsonl").write_text(json.dumps({**row, "commit": "abc-dirty"}) + "\n")
    pages.write_pages(tmp_path, plot=False)
    first = _pages_of(tmp_path)
    pages.write_pages(tmp_path, plot=False)
    assert _pages_of(tmp_path) == first and set(first) == {"README.md", "speed.md"}
    index = first["README.md"].decode()
    assert "| [speed.md](speed.md) | [speed.jsonl](speed.jsonl) |" in index and "[unknown.jsonl](unknown.jsonl)" in index
    assert "## Archive" in index and "[archive/speed.jsonl](archive/speed.jsonl) | 1 |" in index


def test_the_committed_rows_reproduce_the_committed_pages(pages, tmp_path):
    """Every page and the index, regenerated from a copy of the committed rows (and the recorded checkpoint sizes:
    no run directory is read), equal the committed pages byte for byte."""
    for path in RESULTS.glob("*.jsonl"):
        shutil.copy(path, tmp_path)
    if (RESULTS / "archive").exists():
        shutil.copytree(RESULTS / "archive", tmp_path / "archive")
    shutil.copy(RESULTS / "checkpoint_sizes.json", tmp_path)
    pages.write_pages(tmp_path, plot=False)
    regenerated, committed = _pages_of(tmp_path), _pages_of(RESULTS)
    assert set(regenerated) == set(committed)
    stale = [name for name in committed if regenerated[name] != committed[name]]
    assert not stale, f"{stale}: regenerate them with benchmarks/run.py --pages"


def test_the_conditional_page_draws_its_plot_from_its_rows(pages, tmp_path):
    """conditional.png is written by the page step, beside conditional.md that shows it and the index that links it,
    from a data row, the 1024-step teacher's reference row and a blind student's sweep (with its matched row)."""
    import conditional

    def row(method, steps, temperature, entropy, cond_ppl, **extra):
        return {"benchmark": "conditional", "dataset": "web-bible", "template": "prefix:32", "judge": "smollm2-135m",
                "method": method, "steps": steps, "sampler": "ancestral", "sampling_temperature": temperature,
                "entropy": entropy, "cond_ppl": cond_ppl, "nll_stderr": 0.05, "mauve": 0.2, "n_samples": 128,
                "seed": 0, "commit": "abc", "command": "python benchmarks/conditional.py", **extra}

    sweeps = [row("data", None, None, 3.2, 31.0, mauve=None, mauve_ceiling=0.9), row("teacher", 1024, 1.0, 3.0, 900.0),
              row("student-blind", 8, 0.8, 2.9, 500.0), row("student-blind", 8, 1.0, 3.1, 1500.0)]
    (tmp_path / "conditional.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in sweeps + conditional.matched_rows(sweeps)))
    pages.write_pages(tmp_path)
    assert (tmp_path / "conditional.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = (tmp_path / "conditional.md").read_text()
    assert "](conditional.png)" in page and "| 0.900 |" in page.split("## Matched entropy")[1]  # the ceiling beside
    assert "[conditional.png](conditional.png)" in (tmp_path / "README.md").read_text()
