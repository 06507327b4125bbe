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
