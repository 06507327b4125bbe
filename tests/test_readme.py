"""README.md's "Add it to your own Lightning module" example runs as printed: its first ```python block, executed in
an empty directory, fits a tiny teacher and a student shaped by TrajectoryShaper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def first_python_block(text: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    if not blocks:
        raise AssertionError("README.md has no ```python block")
    return blocks[0]


def test_the_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it writes teacher.ckpt where it runs
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(first_python_block(README.read_text()), str(README), "exec"), namespace)
    assert (tmp_path / "teacher.ckpt").exists()
    student, shaped, shaper = namespace["student"], namespace["shaped"], namespace["shaper"]
    assert shaped.global_step == 2
    assert shaper in shaped.callbacks
    assert 0.0 <= float(shaped.callback_metrics["shaping/changed_fraction"]) <= 1.0  # the compass saw the midpoints
    assert type(student.jump_policy).__name__ == "BlindJump"  # teardown gave the student its blind jump back


def test_the_readme_keeps_the_quick_start_commands():
    """.ci/run runs `make test`; the README names the two commands a fresh machine needs."""
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    assert "## Results at a glance" in text and "benchmarks/results/cost_quality.md" in text


@pytest.mark.parametrize("document", ["README.md", "docs", "plugins"])
def test_relative_links_resolve(document):
    """Every relative Markdown link of the README, docs/ and plugins/ names a file of the repository."""
    root = README.parent
    files = [root / document] if document.endswith(".md") else sorted((root / document).rglob("*.md"))
    broken = []
    for file in files:
        if "egg-info" in str(file):
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", file.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (file.parent / target.split("#")[0]).exists():
                broken.append(f"{file.relative_to(root)}: {target}")
    assert not broken, broken
