"""benchmarks/run.py with fake commands: it trains what is missing (continuing an interrupted run), measures each arm
with one script call, regenerates the pages, and records no rows from a tree with uncommitted changes."""

from __future__ import annotations

import stat
import subprocess

import pytest
from lightning_helpers import BENCHMARKS

TRAININGS = """
teacher:
  config: configs/synthetic_tiny.yaml
  overrides: []
  start_from: null
  shaping: null
  stages: [reproduce_tiny.sh teachers]
student:
  config: configs/synthetic_student.yaml
  overrides: [--model.init_args.teacher_checkpoint=runs/teacher/checkpoints/last.ckpt, --trainer.max_steps=2]
  start_from: null
  shaping: {compass: oracle, num_candidates: 4, policy: argmin, selection_temperature: 1.0, switch_time: 0.5,
            shape_from: 0.0, filler_draws: 1, shape_until: 1.0}
  stages: [reproduce_tiny.sh students]
"""
ARMS = """
benchmark: quality
script: quality
arms:
  - name: student
    stages: [reproduce_tiny.sh quality]
    model: {method: student-shaped, source: mask, checkpoint: runs/student/checkpoints/last.ckpt}
    sampling: {sampler: ancestral, steps: [2], temperatures: [1.0], step_sizes: null, batch_size: null}
    sampling_shaping: null
    judging: {dataset: synthetic, data_config: configs/synthetic_tiny.yaml, judges: [oracle], num_samples: 4, seed: 0,
              frontier: false, samples_dir: runs/samples}
    compare_with: []
"""
FAKE_TSDFM = """#!/bin/sh
echo "tsdfm $*" >> "$FAKE_LOG"
for arg in "$@"; do case $arg in --trainer.default_root_dir=*) root=${arg#*=} ;; esac; done
mkdir -p "$root/checkpoints" && touch "$root/checkpoints/last.ckpt"
"""
FAKE_PYTHON = """#!/bin/sh
echo "python $*" >> "$FAKE_LOG"
"""


@pytest.fixture
def runner(tmp_path, monkeypatch):
    """run.py on a two-training registry, in a tmp repository root, with fake tsdfm and python that log their
    arguments; returns (run module, root, log, programs)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import commands
    import run

    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "trainings.yaml").write_text(TRAININGS)
    (registry / "quality.yaml").write_text(ARMS)
    programs = []
    for name, text in (("tsdfm", FAKE_TSDFM), ("python", FAKE_PYTHON)):
        path = tmp_path / f"fake-{name}"
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        programs.append(str(path))
    log = tmp_path / "log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    root = tmp_path / "root"
    root.mkdir()
    fake = commands.Programs(python=programs[1], tsdfm=programs[0])

    def main(*argv):
        run.main(list(argv), root=root, programs=fake, registry_dir=registry)

    monkeypatch.setattr(run.results_io, "git_commit", lambda: "abc1234")
    return run, main, root, log


def test_a_dry_run_prints_every_command_and_runs_none(runner, capsys):
    run, main, root, log = runner
    main("--arm", "quality/student", "--dry-run")
    out = capsys.readouterr().out
    assert out.index("--trainer.default_root_dir=runs/teacher") < out.index("--trainer.default_root_dir=runs/student")
    assert "--trainer.callbacks+=TrajectoryShaper" in out and "--trainer.callbacks.policy=argmin" in out
    assert "benchmarks/quality.py --benchmark quality" in out and "student-shaped:mask:2:ancestral=" in out
    assert "touch runs/student/.done" in out and out.rstrip().endswith("benchmarks/run.py --pages")
    assert not log.exists() and not (root / "runs").exists()


def test_it_trains_what_is_missing_continues_an_interrupted_run_and_measures(runner):
    run, main, root, log = runner
    (root / "runs/teacher").mkdir(parents=True)
    (root / "runs/teacher/.done").touch()  # done: reused
    (root / "runs/student/checkpoints").mkdir(parents=True)
    (root / "runs/student/checkpoints/last.ckpt").touch()  # interrupted: continued from its own checkpoint
    main("--stage", "reproduce_tiny.sh quality")
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and "--trainer.default_root_dir=runs/student" in lines[0]  # the teacher is not trained
    assert lines[0].endswith("--ckpt_path=runs/student/checkpoints/last.ckpt")
    assert "benchmarks/quality.py" in lines[1] and lines[2].endswith("benchmarks/run.py --pages")
    assert (root / "runs/student/.done").exists()
    main("--stage", "reproduce_tiny.sh students")  # done now: nothing to train
    assert len(log.read_text().splitlines()) == 3


def test_rows_are_not_recorded_from_a_tree_with_uncommitted_changes(runner, monkeypatch):
    run, main, root, log = runner
    monkeypatch.setattr(run.results_io, "git_commit", lambda: "abc1234-dirty")
    with pytest.raises(run.DirtyTree, match="uncommitted changes.*--allow-dirty"):
        main("--arm", "quality/student")
    assert not log.exists()  # refused before the trainings: they would be hours lost
    main("--train", "teacher")  # a training records no rows
    main("--arm", "quality/student", "--allow-dirty")
    assert "benchmarks/quality.py" in log.read_text()


def test_a_failing_command_stops_the_run_and_unknown_names_are_refused(runner):
    run, main, root, log = runner
    (root / "runs/teacher").mkdir(parents=True)
    (root / "runs/teacher/.done").touch()
    with pytest.raises(SystemExit, match="unknown 'quality/nothing'"):
        main("--arm", "quality/nothing")
    with pytest.raises(SystemExit, match="unknown 'reproduce_tiny.sh nothing'"):
        main("--stage", "reproduce_tiny.sh nothing")
    run_failing = run.Step("fails", ["false"], records_rows=False)
    with pytest.raises(SystemExit, match="fails failed"):
        run.execute([run_failing], root, allow_dirty=False)


@pytest.mark.slow  # a subprocess that imports the benchmarks and the library
def test_help_names_every_mode(capsys):
    out = subprocess.run([".venv/bin/python", "benchmarks/run.py", "--help"], cwd=BENCHMARKS.parent,
                         capture_output=True, text=True, check=True).stdout
    for option in ("--arm", "--benchmark", "--stage", "--train", "--dry-run", "--allow-dirty", "--pages", "--archive"):
        assert option in out


def test_stages_sh_refuses_an_argument_it_would_drop(tmp_path):
    script = f"source {BENCHMARKS}/stages.sh; TSDFM=true; fit name configs/x.yaml runs/other --trainer.max_steps=2"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "unexpected argument 'runs/other'" in done.stderr


def test_a_changed_results_file_does_not_make_the_measured_code_dirty(tmp_path):
    """Rows record the commit of the code that measured them: the results the benchmarks write are their output."""
    import importlib.util
    import shutil
    import subprocess

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    shutil.copy(BENCHMARKS / "results_io.py", tmp_path / "benchmarks" / "results_io.py")
    (tmp_path / "benchmarks" / "results" / "rows.jsonl").write_text("{}\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "rows"], check=True)
    spec = importlib.util.spec_from_file_location("copied_results_io", tmp_path / "benchmarks" / "results_io.py")
    copied = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copied)
    (tmp_path / "benchmarks" / "results" / "rows.jsonl").write_text("{}\n{}\n")
    assert not copied.git_commit().endswith("-dirty")
    (tmp_path / "benchmarks" / "results_io.py").write_text("# changed code\n")
    assert copied.git_commit().endswith("-dirty")


def test_make_demos_finished_runs_are_reused_by_their_done_markers(tmp_path, monkeypatch, capsys):
    """The corpus stages read make demo's runs/demo/NAME: with their .done markers nothing is trained; without, the
    teacher is trained before the students that read it, in the directory make demo writes."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import commands
    import run

    monkeypatch.setattr(run.results_io, "git_commit", lambda: "abc1234")
    fake = commands.Programs(python="python", tsdfm="tsdfm")
    corpus = ["--stage", "reproduce_compass.sh corpus", "--dry-run"]
    run.main(corpus, root=tmp_path, programs=fake)
    out = capsys.readouterr().out
    assert out.index("--trainer.default_root_dir=runs/demo/teacher") < out.index(
        "--trainer.default_root_dir=runs/demo/student_blind")
    assert "touch runs/demo/causal_lm/.done" in out
    for name in ("teacher", "student_blind", "causal_lm", "path_lm", "student_pathlm_is16"):
        (tmp_path / "runs/demo" / name).mkdir(parents=True)
        (tmp_path / "runs/demo" / name / ".done").touch()
    run.main([*corpus, "--stage", "reproduce_compass.sh corpus-path-lm-distilled"], root=tmp_path, programs=fake)
    out = capsys.readouterr().out
    assert "tsdfm fit" not in out and out.count("benchmarks/quality.py") == 6
    assert "student-shaped-pathlm-is16:mask:8:ancestral=runs/demo/student_pathlm_is16/checkpoints/last.ckpt" in out
