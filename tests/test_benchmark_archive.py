"""benchmarks/archive.py: rows that no longer follow from the registry move to results/archive/, each with its
reason; the rows that stay keep their order."""

from __future__ import annotations

import json

import pytest
from lightning_helpers import BENCHMARKS

TRAININGS = """
teacher:
  config: configs/synthetic_tiny.yaml
  overrides: []
  start_from: null
  shaping: null
  stages: [tiny]
student:
  config: configs/synthetic_student.yaml
  overrides: [--model.init_args.teacher_checkpoint=runs/teacher/checkpoints/last.ckpt]
  start_from: null
  shaping: {compass: runs/compass/checkpoints/last.ckpt, num_candidates: 16, policy: boltzmann,
            selection_temperature: 1.0, switch_time: 0.5, shape_from: 0.0, filler_draws: 1, shape_until: 1.0}
  stages: [tiny]
compass:
  config: configs/synthetic_compass.yaml
  overrides: [--model.init_args.teacher_checkpoint=runs/teacher/checkpoints/last.ckpt]
  start_from: null
  shaping: null
  stages: [tiny]
"""
ARMS = """
benchmark: frontier
script: quality
arms:
  - name: student
    stages: [tiny]
    model: {method: student-shaped, source: mask, checkpoint: runs/student/checkpoints/last.ckpt}
    sampling: {sampler: ancestral, steps: [8], temperatures: [0.9, 1.0], step_sizes: null, batch_size: null}
    sampling_shaping: null
    judging: {dataset: synthetic, data_config: configs/synthetic_tiny.yaml, judges: [oracle], num_samples: 256,
              seed: 0, frontier: true, samples_dir: runs/samples}
    compare_with: []
"""


def sweep(temperature, commit="abc1234", **fields):
    return {"benchmark": "frontier", "dataset": "synthetic", "source": "mask", "method": "student-shaped", "steps": 8,
            "judge": "oracle", "sampling_temperature": temperature, "n_samples": 256, "seed": 0, "sampler": "ancestral",
            "checkpoint": "runs/student/checkpoints/last.ckpt", "compass": "learned", "k": 16, "policy": "boltzmann",
            "selection_temperature": 1.0, "commit": commit, **fields}


def matched(bracket):
    return {**sweep(None), "reference": "data", "bracket": bracket, "matched_gen_ppl": 5.0}


@pytest.fixture
def archive(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import archive
    import arms

    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "trainings.yaml").write_text(TRAININGS)
    (registry / "frontier.yaml").write_text(ARMS)
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setattr(archive.results_io, "RESULTS", results)
    return archive, arms.load(registry), results


def test_dirty_rows_rows_of_other_settings_and_rows_interpolated_from_them_move(archive):
    archive, registry, results = archive
    rows = [{"method": "data", "dataset": "synthetic", "judge": "oracle", "commit": "abc1234"},  # data: stays
            sweep(0.9), sweep(1.0),  # the arm's settings: stay
            sweep(0.9, commit="abc1234-dirty", steps=4, method="student-blind", compass=None, k=None),  # dirty
            sweep(0.9, k=4, policy="argmin", method="student-shaped", steps=16),  # K = 4 argmin: the arm trains K = 16
            sweep(1.3),  # a temperature the arm does not sweep
            {**sweep(1.0), "method": "student-other"},  # no arm measures it: stays
            matched([0.9, 1.0]), matched([1.0, 1.3])]
    (results / "frontier.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert sum(archive.archive(registry, dry_run=True)["frontier"].values()) == 4
    assert len((results / "frontier.jsonl").read_text().splitlines()) == len(rows)  # a dry run moves nothing
    assert not (results / "archive").exists()
    moved = dict(archive.archive(registry)["frontier"])
    assert moved == {"measured from a tree with uncommitted changes": 1, "frontier/student now names other settings": 2,
                     "interpolated from archived sweep rows": 1}
    kept = [json.loads(line) for line in (results / "frontier.jsonl").read_text().splitlines()]
    assert kept == [rows[0], rows[1], rows[2], rows[6], rows[7]]
    gone = [json.loads(line) for line in (results / "archive" / "frontier.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "archive_reason"} for r in gone] == [rows[3], rows[4], rows[5], rows[8]]
    reasons = [r["archive_reason"] for r in gone]
    assert reasons[0] == "measured from a tree with uncommitted changes (abc1234-dirty)"
    assert "trained with num_candidates 4, the arm names 16" in reasons[1] and "policy 'argmin'" in reasons[1]
    assert "sampling_temperature 1.3, the arm names [0.9, 1.0]" in reasons[2]
    assert reasons[3] == "interpolated from archived sweep rows"
    assert archive.archive(registry) == {}  # once moved, every row follows from the registry



def test_every_committed_row_follows_from_the_registry(monkeypatch):
    """No committed row would move: rows measured from a tree with uncommitted changes, or that record other settings
    than their arm names, are in results/archive (benchmarks/run.py --archive moves them)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import archive
    import arms
    import results_io

    registry = arms.load()
    moving = []
    for path in sorted(results_io.RESULTS.glob("*.jsonl")):
        rows = results_io.read_rows(path.stem)
        benchmark_arms = [a for a in registry.arms.values() if a.benchmark == path.stem]
        moving += [f"{path.name}: {reason}" for reason in archive.reasons(rows, benchmark_arms, registry) if reason]
    assert not moving, moving[:5]


def test_a_registry_compass_is_labelled_by_its_training_not_by_the_file_on_this_machine(monkeypatch, tmp_path):
    """A path LM that a registry training writes is ``path-lm`` whether or not its checkpoint exists here (CI has no
    runs/), so the rows an arm could have measured are the same on every machine."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.chdir(tmp_path)  # no runs/ here
    import archive
    import arms

    registry = arms.load()
    path_lms = [t for t in registry.trainings.values() if t.config.endswith("path_lm.yaml")]
    assert path_lms, "the registry trains a path LM"
    assert archive.compass_label(path_lms[0].last_checkpoint, registry) == "path-lm"
    assert archive.compass_label("path-lm", registry) == "path-lm"
    causal_lms = [t for t in registry.trainings.values() if t.config.endswith("causal_lm.yaml")]
    assert archive.compass_label("ar:" + causal_lms[0].last_checkpoint, registry) == "causal-lm"  # not "learned"
    guided = registry.arms["cost_quality/student-guided-lm-is16"]
    assert archive._arm_compass(guided, registry) == "causal-lm"  # its rows are compared with it


CONDITIONAL_ARMS = """
benchmark: conditional
script: conditional
arms:
  - name: student-blind-8
    stages: [tiny]
    model: {method: student-blind, checkpoint: runs/teacher/checkpoints/last.ckpt}
    sampling: {sampler: ancestral, steps: [8], temperatures: [0.8, 1.0], batch_size: null}
    sampling_shaping: null
    conditions: {dataset: synthetic, data_config: configs/synthetic_tiny.yaml, templates: [prefix:4, infill:2:6],
                 num_conditions: 16, seed: 0, samples_dir: runs/samples, judges: [oracle]}
    compare_with: []
  - name: student-guided-8
    stages: [tiny]
    model: {method: student-guided, checkpoint: runs/teacher/checkpoints/last.ckpt}
    sampling: {sampler: ancestral, steps: [8], temperatures: [0.8, 1.0], batch_size: null}
    sampling_shaping: {compass: runs/compass/checkpoints/last.ckpt, num_candidates: 16, policy: importance,
                       selection_temperature: 1.0, switch_time: 0.5, shape_from: 0.0, filler_draws: 1, shape_until: 1.0}
    conditions: {dataset: synthetic, data_config: configs/synthetic_tiny.yaml, templates: [prefix:4, infill:2:6],
                 num_conditions: 16, seed: 0, samples_dir: runs/samples, judges: [oracle]}
    compare_with: [conditional/student-blind-8]
"""


def completion(temperature, method="student-blind", template="prefix:4", **fields):
    return {"benchmark": "conditional", "dataset": "synthetic", "judge": "oracle", "template": template,
            "method": method, "steps": 8, "sampler": "ancestral", "sampling_temperature": temperature, "n_samples": 16,
            "seed": 0, "checkpoint": "runs/teacher/checkpoints/last.ckpt", "commit": "abc1234", **fields}


def test_conditional_rows_move_for_a_temperature_outside_the_sweep_or_another_sampling_shaping(archive, tmp_path):
    archive, _, results = archive
    import arms

    (tmp_path / "registry" / "conditional.yaml").write_text(CONDITIONAL_ARMS)
    registry = arms.load(tmp_path / "registry")
    guide = {"compass": "runs/compass/checkpoints/last.ckpt", "num_candidates": 16, "policy": "importance",
             "selection_temperature": None, "switch_time": None, "shape_from": 0.0, "filler_draws": None,
             "compass_kind": "nce"}
    rows = [completion(1.0), completion(0.8), completion(0.8, template="infill:2:6"),  # the blind arm's: stay
            completion(0.5),  # a temperature the arm does not sweep
            completion(1.0, method="student-guided", sampling_shaping=guide),  # the guided arm's: stays
            completion(1.0, method="student-guided", sampling_shaping={**guide, "num_candidates": 4}),
            completion(0.8, method="student-guided"),  # sampled blind: the arm is guided
            {**completion(None), "reference": "teacher-1024", "bracket": [0.5, 0.8], "matched_cond_ppl": 9.0},
            {**completion(None, template="infill:2:6"), "reference": "teacher-1024", "bracket": [0.5, 0.8],
             "matched_cond_ppl": 9.0},  # another template's sweep: its 0.5 row did not move
            completion(1.0, judge="smollm2-135m")]  # a judge the arm does not name
    reasons = archive.reasons(rows, list(registry.arms.values()), registry)
    assert [bool(r) for r in reasons] == [False, False, False, True, False, True, True, True, False, True]
    assert "judge 'smollm2-135m', the arm names ['oracle']" in reasons[9]
    assert "sampling_temperature 0.5, the arm names [0.8, 1.0]" in reasons[3]
    assert "sampled with num_candidates 4, the arm names 16" in reasons[5]
    assert "sampled blind, the arm is guided while it samples" in reasons[6]
    assert reasons[7] == "interpolated from archived sweep rows"
