"""benchmarks/glance.py: the results at a glance, each claim read from its matched-entropy rows as cost_quality.py
reads them, and the README's table between its markers."""

from __future__ import annotations

import json
import math

import pytest
from lightning_helpers import BENCHMARKS

TEACHER, STUDENT = "runs/teacher/checkpoints/last.ckpt", "runs/student/checkpoints/last.ckpt"
GLANCE = ("<!-- glance:begin -->", "<!-- glance:end -->")
PEERS = ("<!-- glance:peers:begin -->", "<!-- glance:peers:end -->")
CLAIMS = f"""\
tables:
  glance:
    title: Results at a glance
    begin: "{GLANCE[0]}"
    end: "{GLANCE[1]}"
    reference: teacher-1024
    columns: {{claim: claim, ratio to the blind student: ratio to the blind student, significant: significant,
              ratio to the 1024-step teacher: ratio to the 1024-step teacher, commit: commit}}
  peers:
    title: Against the peers
    begin: "{PEERS[0]}"
    end: "{PEERS[1]}"
    reference: teacher-1024
    columns: {{claim: peer, matched perplexity: perplexity, ratio to the blind student: ratio to ours}}
claims:
  - claim: guided by the oracle
    table: glance
    dataset: synthetic-textlike
    steps: 8
    arm: {{benchmark: cost_quality, method: student-guided, source: mask}}
    against: {{benchmark: cost_quality, method: student-blind, source: mask}}
    teacher: {{benchmark: cost_quality, method: teacher, source: mask}}
  - claim: guided by an energy never measured
    table: glance
    dataset: synthetic-textlike
    steps: 8
    arm: {{benchmark: cost_quality, method: student-guided-never, source: mask}}
    against: {{benchmark: cost_quality, method: student-blind, source: mask}}
    teacher: null
  - claim: the blind student itself
    table: peers
    dataset: synthetic-textlike
    steps: 8
    arm: {{benchmark: cost_quality, method: student-blind, source: mask}}
    against: {{benchmark: cost_quality, method: student-blind, source: mask}}
    teacher: {{benchmark: cost_quality, method: teacher, source: mask}}
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


def _matched(method: str, steps: int, ppl: float, se: float, commit: str = "abc1234",
             source: str = "mask", reference: str = "teacher-1024") -> dict:
    return {"benchmark": "cost_quality", "dataset": "synthetic-textlike", "source": source, "method": method,
            "steps": steps, "judge": "oracle", "seed": 0, "reference": reference, "reference_entropy": 3.0,
            "matched_gen_ppl": ppl, "matched_nll_stderr": se, "commit": commit}


def _sweep(method: str, steps: int, checkpoint: str, sampler: str = "ancestral", shaping: dict | None = None) -> dict:
    return {"benchmark": "cost_quality", "dataset": "synthetic-textlike", "source": "mask", "method": method,
            "steps": steps, "sampler": sampler, "sampling_temperature": 1.0, "seconds_per_sequence": 0.5,
            "n_samples": 64, "seed": 0, "checkpoint": checkpoint, "sampling_shaping": shaping, "judge": "oracle",
            "commit": "abc1234", "command": "python benchmarks/quality.py"}


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
    assert row["ratio_to_blind"] is None and row["significant"] == "" and "x (" not in glance.tables()["glance"]


def test_regenerating_twice_gives_the_same_bytes_and_the_index_lists_the_page(glance, tmp_path):
    import pages

    _write_rows(tmp_path)
    pages.write_pages(tmp_path, plot=False)
    first = (tmp_path / "glance.md").read_bytes()
    pages.write_pages(tmp_path, plot=False)
    assert (tmp_path / "glance.md").read_bytes() == first
    text = first.decode()
    assert "synthetic-textlike: oracle judge, 64 samples, seed 0, matched at the teacher-1024 entropy 3.000" in text
    tables = glance.tables()
    assert text.startswith("# Results at a glance\n") and f"\n{tables['glance']}\n\n## Against the peers\n" in text
    assert text.endswith(tables["peers"] + "\n")
    index = (tmp_path / "README.md").read_text()
    assert "| [glance.md](glance.md) | [cost_quality.jsonl](cost_quality.jsonl) |" in index


def test_update_readme_writes_each_table_between_its_own_markers(glance, tmp_path, capsys):
    _write_rows(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{GLANCE[0]}\n| an old | table |\n{GLANCE[1]}\n\nbetween\n{PEERS[0]}\n"
                      f"{PEERS[1]}\nafter\n")
    assert glance.update_readme(readme)
    tables = glance.tables()
    expected = (f"# Title\n\nbefore\n{GLANCE[0]}\n{tables['glance']}\n{GLANCE[1]}\n\nbetween\n{PEERS[0]}\n"
                f"{tables['peers']}\n{PEERS[1]}\nafter\n")
    assert readme.read_text() == expected
    assert tables["peers"].startswith("| peer | perplexity | ratio to ours |\n")
    assert "| the blind student itself | 10.000 | 1.000x (0.000) |" in tables["peers"]
    assert glance.update_readme(readme) and readme.read_text() == expected
    readme.write_text(f"# Title\n\n{GLANCE[0]}\n{GLANCE[1]}\n")
    assert not glance.update_readme(readme)  # the peers' markers are missing: the glance table is still written
    assert readme.read_text() == f"# Title\n\n{GLANCE[0]}\n{tables['glance']}\n{GLANCE[1]}\n"
    assert PEERS[0] in capsys.readouterr().err
    readme.write_text("# Title\n\nno markers\n")
    assert not glance.update_readme(readme)
    assert readme.read_text() == "# Title\n\nno markers\n" and GLANCE[0] in capsys.readouterr().err


def test_a_model_against_itself_is_at_ratio_one_and_rows_of_another_source_are_not_read(glance, tmp_path):
    _write_rows(tmp_path)
    path = tmp_path / "cost_quality.jsonl"
    uniform = _matched("student-blind", 8, 20.0, 0.011, source="uniform")
    path.write_text(json.dumps(uniform) + "\n" + path.read_text())
    guided, _, itself = glance.claim_rows(glance.load_claims())
    assert guided["ratio_to_blind"] == 0.8
    assert (itself["matched perplexity"], itself["ratio_to_blind"], itself["log_ratio_se_blind"]) == (10.0, 1.0, 0.0)
    assert itself["significant"] == "no" and itself["ratio_to_teacher"] == 10 / 9


def test_a_table_reads_the_rows_matched_at_its_reference_and_refuses_another(glance, tmp_path):
    import arms

    _write_rows(tmp_path)
    path = tmp_path / "cost_quality.jsonl"
    at_data = [_matched("student-blind", 8, 9.0, 0.011, reference="data"),
               _matched("student-guided", 8, 6.0, 0.010, reference="data")]
    path.write_text(path.read_text() + "".join(json.dumps(r) + "\n" for r in at_data))
    assert glance.claim_rows(glance.load_claims())[0]["ratio_to_blind"] == 0.8  # the teacher-1024 rows
    claims = tmp_path / "claims.yaml"
    claims.write_text(CLAIMS.replace("reference: teacher-1024", "reference: data", 1))
    guided = glance.claim_rows(glance.load_claims(claims))[0]
    assert (guided["matched perplexity"], guided["ratio_to_blind"]) == (6.0, 6.0 / 9.0)
    assert guided["ratio to the 1024-step teacher"] == "not measured"  # no teacher row at the data's entropy
    claims.write_text(CLAIMS.replace("reference: teacher-1024", "reference: teacher-8", 1))
    with pytest.raises(arms.RegistryError, match=r"tables: glance: reference: expected one of \['teacher-1024', "
                                                 r"'data'\], got 'teacher-8'"):
        glance.load_claims(claims)


def test_a_claim_missing_a_key_or_naming_no_arm_is_refused(glance, tmp_path):
    import arms

    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.replace("    teacher: {benchmark: cost_quality, method: teacher, source: mask}\n", ""))
    with pytest.raises(arms.RegistryError, match=r"claims\[0\]: missing \['teacher'\]"):
        glance.load_claims(path)
    path.write_text(CLAIMS.replace("{benchmark: cost_quality, method: student-guided, source: mask}",
                                   "cost_quality/no-such-arm"))
    with pytest.raises(arms.RegistryError, match="'cost_quality/no-such-arm' is no arm of the registry"):
        glance.load_claims(path, registry=arms.Registry({}, {}))


def test_a_claim_naming_an_unknown_table_or_a_table_without_claims_is_refused(glance, tmp_path):
    import arms

    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.replace("table: peers", "table: rivals"))
    with pytest.raises(arms.RegistryError, match=r"'the blind student itself': table: 'rivals' is no table of "
                                                 r"tables: \['glance', 'peers'\]"):
        glance.load_claims(path)
    path.write_text(CLAIMS.replace("table: peers", "table: glance"))
    with pytest.raises(arms.RegistryError, match=r"tables: no claim names \['peers'\]"):
        glance.load_claims(path)
    path.write_text(CLAIMS.replace("matched perplexity: perplexity", "seconds: seconds"))
    with pytest.raises(arms.RegistryError, match="tables: peers: columns: expected a mapping of some of"):
        glance.load_claims(path)
    path.write_text(CLAIMS.replace(PEERS[1], GLANCE[1]))
    with pytest.raises(arms.RegistryError, match="every begin and end marker differs"):
        glance.load_claims(path)


def test_the_claims_file_parses_and_its_arms_measure_the_claims_dataset(glance, tmp_path):
    import arms

    registry = arms.load()
    claims = glance.load_claims(BENCHMARKS / "glance.yaml", registry=registry)
    assert claims[0].model == glance.Rows("cost_quality", "student-guided-pathlm-is16", "mask")
    assert all(c.against.method == "student-blind" for c in claims if c.table.name != "duo")
    duo = [c for c in claims if c.table.name == "duo"]
    assert duo[0].table.reference == "data" and {c.against for c in duo} == {glance.Rows("frontier", "duo-dcd-n512", "uniform")}
    assert {c.model.source for c in duo} == {"mask", "uniform"} and all(c.teacher is None for c in duo)
    at_data = {"duo", "corpus"}  # DUO has no 1024-step teacher of its own source there, or none at all (corpus)
    assert {c.table.reference for c in claims if c.table.name in at_data} == {"data"}
    assert {c.table.reference for c in claims if c.table.name not in at_data} == {"teacher-1024"}
    assert all(c.teacher.method == "teacher" for c in claims if c.teacher is not None)
    assert all(c.teacher is None for c in claims if c.table.name == "corpus")  # its 1024-step teacher has no frontier
    names = [c.table.name for c in claims]
    assert names == sorted(names, key=["glance", "peers", "duo", "corpus", "sdtt-gap"].index)  # in the order of tables
    peers = [c for c in claims if c.table.name == "peers"]
    ours = {glance.Rows("frontier", "student-blind", source) for source in ("mask", "uniform")}
    assert {c.against for c in peers} == ours
    assert all(c.against.source == c.model.source == c.teacher.source for c in peers)  # each against its own source
    assert {c.dataset for c in claims} == {"synthetic-textlike", "web-bible", "synthetic"}
    gap = [c for c in claims if c.table.name == "sdtt-gap"]
    assert {(c.dataset, c.against.method, c.teacher.method) for c in gap} == {("synthetic", "student-blind", "teacher")}
    named = [spec[key] for spec in arms._read(BENCHMARKS / "glance.yaml")["claims"]
             for key in ("arm", "against", "teacher") if spec[key] is not None]
    assert all(name in registry.arms for name in named)  # every row the README cites is an arm's: run.py measures it
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS.replace("{benchmark: cost_quality, method: student-guided, source: mask}",
                                   "cost_quality/student-blind")
                    .replace("dataset: synthetic-textlike", "dataset: web-bible", 1))
    with pytest.raises(arms.RegistryError, match="judges 'synthetic-textlike', not the claim's dataset 'web-bible'"):
        glance.load_claims(path, registry=registry)
