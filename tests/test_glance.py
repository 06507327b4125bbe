"""benchmarks/glance.py: the results at a glance, each claim read from its matched-entropy rows as cost_quality.py
reads them, and the README's table between its markers."""

from __future__ import annotations

import json
import math

import pytest
from lightning_helpers import BENCHMARKS

TEACHER, STUDENT = "runs/teacher/checkpoints/last.ckpt", "runs/student/checkpoints/last.ckpt"
CLAIMS = """\
claims:
  - claim: guided by the oracle
    dataset: synthetic-textlike
    steps: 8
    arm: {benchmark: cost_quality, method: student-guided}
    against: {benchmark: cost_quality, method: student-blind}
    teacher: {benchmark: cost_quality, method: teacher}
  - claim: guided by an energy never measured
    dataset: synthetic-textlike
    steps: 8
    arm: {benchmark: cost_quality, method: student-guided-never}
    against: {benchmark: cost_quality, method: student-blind}
    teacher: null
"""


@pytest.fixture
def glance(monkeypatch, tmp_path):
    """benchmarks/glance.py with its rows read from tmp_path and its claims from tmp_path/glance.yaml."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import glance

    monkeypatch.setattr(glance.results_io, "RESULTS", tmp_path)
    (tmp_path / "glance.yaml").write_text(CLAIMS)
    monkeypatch.setattr(glance, "CLAIMS", tmp_path / "glance.yaml")
    return glance


def _matched(method: str, steps: int, ppl: float, se: float, commit: str = "abc1234") -> dict:
    return {"benchmark": "cost_quality", "dataset": "synthetic-textlike", "method": method, "steps": steps,
            "judge": "oracle", "seed": 0, "reference": "teacher-1024", "reference_entropy": 3.0,
            "matched_gen_ppl": ppl, "matched_nll_stderr": se, "commit": commit}


def _sweep(method: str, steps: int, checkpoint: str, sampler: str = "ancestral", shaping: dict | None = None) -> dict:
    return {"benchmark": "cost_quality", "dataset": "synthetic-textlike", "method": method, "steps": steps,
            "sampler": sampler, "sampling_temperature": 1.0, "seconds_per_sequence": 0.5, "n_samples": 64, "seed": 0,
            "checkpoint": checkpoint, "sampling_shaping": shaping, "judge": "oracle", "commit": "abc1234",
            "command": "python benchmarks/quality.py"}


def _write_rows(directory, guided_commit: str = "abc1234") -> None:
    oracle = {"compass": "oracle", "num_candidates": 16, "policy": "importance", "shape_from": 0.0, "filler_draws": 1}
    rows = [_sweep("teacher", 1024, TEACHER, sampler="first_hitting"), _matched("teacher", 1024, 9.0, 0.012),
            _sweep("student-blind", 8, STUDENT), _matched("student-blind", 8, 10.0, 0.011),
            _sweep("student-guided", 8, STUDENT, shaping=oracle),
            _matched("student-guided", 8, 8.0, 0.010, commit=guided_commit)]
    (directory / "cost_quality.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sizes = {TEACHER: {"parameters": 1000, "seq_len": 16}, STUDENT: {"parameters": 1000, "seq_len": 16}}
    (directory / "checkpoint_sizes.json").write_text(json.dumps(sizes))


def test_a_claims_ratio_and_se_are_those_cost_quality_computes(glance, tmp_path):
    import cost_quality

    _write_rows(tmp_path)
    cost = {r["method"]: r for r in cost_quality.cost_rows(glance.read_rows("cost_quality"))}["student-guided"]
    row = glance.claim_rows(glance.load_claims())[0]
    assert (row["ratio_to_blind"], row["log_ratio_se_blind"]) == (cost["ratio_to_blind"], cost["log_ratio_se_blind"])
    assert (row["ratio_to_teacher"], row["log_ratio_se_teacher"]) == (cost["ratio_to_teacher_1024"],
                                                                      cost["log_ratio_se_teacher"])
    assert row["ratio to the blind student"] == f"0.800x ({math.hypot(0.010, 0.011):.3f})"
    assert row["significant"] == "yes" and row["commit"] == "abc1234"
    assert row["ratio to the 1024-step teacher"] == f"{8 / 9:.3f}x ({math.hypot(0.010, 0.012):.3f})"


@pytest.mark.parametrize(("ratio", "answer"), [(0.8, "yes"), (1.25, "yes (worse)"), (1.02, "no"), (0.98, "no")])
def test_a_ratio_is_significant_beyond_two_se_of_its_log(glance, ratio, answer):
    assert glance.significance(ratio, 0.015) == answer


def test_a_claim_without_rows_is_not_measured(glance, tmp_path):
    _write_rows(tmp_path)
    row = glance.claim_rows(glance.load_claims())[1]
    assert row["ratio to the blind student"] == "not measured" and row["ratio_to_blind"] is None
    assert row["significant"] == row["commit"] == row["ratio to the 1024-step teacher"] == ""
    assert "| guided by an energy never measured | not measured |  |  |  |" in glance.page()


def test_a_row_measured_from_a_dirty_tree_is_refused(glance, tmp_path):
    _write_rows(tmp_path, guided_commit="abc1234-dirty")
    row = glance.claim_rows(glance.load_claims())[0]
    refusal = row["ratio to the blind student"]
    assert refusal.startswith("refused") and "abc1234-dirty" in refusal
    assert row["ratio_to_blind"] is None and row["significant"] == "" and "x (" not in glance.table()


def test_regenerating_twice_gives_the_same_bytes_and_the_index_lists_the_page(glance, tmp_path):
    import pages

    _write_rows(tmp_path)
    pages.write_pages(tmp_path, plot=False)
    first = (tmp_path / "glance.md").read_bytes()
    pages.write_pages(tmp_path, plot=False)
    assert (tmp_path / "glance.md").read_bytes() == first
    text = first.decode()
    assert "synthetic-textlike: oracle judge, 64 samples, seed 0, matched at the teacher-1024 entropy 3.000" in text
    assert text.endswith(glance.table() + "\n")
    index = (tmp_path / "README.md").read_text()
    assert "| [glance.md](glance.md) | [cost_quality.jsonl](cost_quality.jsonl) |" in index


def test_update_readme_replaces_only_the_block_between_the_markers(glance, tmp_path, capsys):
    _write_rows(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{glance.BEGIN}\n| an old | table |\n{glance.END}\n\nafter\n")
    assert glance.update_readme(readme)
    expected = f"# Title\n\nbefore\n{glance.BEGIN}\n{glance.table()}\n{glance.END}\n\nafter\n"
    assert readme.read_text() == expected
    assert glance.update_readme(readme) and readme.read_text() == expected
    readme.write_text("# Title\n\nno markers\n")
    assert not glance.update_readme(readme)
    assert readme.read_text() == "# Title\n\nno markers\n" and glance.BEGIN in capsys.readouterr().err


def test_a_claim_missing_a_key_or_naming_no_arm_is_refused(glance, tmp_path):
    import arms

    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.replace("    teacher: {benchmark: cost_quality, method: teacher}\n", ""))
    with pytest.raises(arms.RegistryError, match=r"claims\[0\]: missing \['teacher'\]"):
        glance.load_claims(path)
    path.write_text(CLAIMS.replace("{benchmark: cost_quality, method: student-guided}", "cost_quality/no-such-arm"))
    with pytest.raises(arms.RegistryError, match="'cost_quality/no-such-arm' is no arm of the registry"):
        glance.load_claims(path, registry=arms.Registry({}, {}))


def test_the_claims_file_parses_and_its_arms_measure_the_claims_dataset(glance, tmp_path):
    import arms

    registry = arms.load()
    claims = glance.load_claims(BENCHMARKS / "glance.yaml", registry=registry)
    assert claims[0].model == glance.Rows("cost_quality", "student-guided-pathlm-is16")
    assert all(c.against.method == "student-blind" and c.teacher.method == "teacher" for c in claims)
    assert {c.dataset for c in claims} == {"synthetic-textlike", "web-bible"}
    named = [spec[key] for spec in arms._read(BENCHMARKS / "glance.yaml")["claims"]
             for key in ("arm", "against", "teacher") if spec[key] is not None]
    assert all(name in registry.arms for name in named)  # every row the README cites is an arm's: run.py measures it
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.replace("{benchmark: cost_quality, method: student-guided}", "cost_quality/student-blind")
                    .replace("dataset: synthetic-textlike", "dataset: web-bible", 1))
    with pytest.raises(arms.RegistryError, match="judges 'synthetic-textlike', not the claim's dataset 'web-bible'"):
        glance.load_claims(path, registry=registry)
