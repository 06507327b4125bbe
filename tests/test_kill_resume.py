"""A shaped student run killed with SIGKILL and resumed from its last.ckpt ends with the same weights as an
uninterrupted run: `tsdfm fit` in subprocesses, TrajectoryShaper with the oracle compass, a checkpoint every step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from lightning_helpers import TINY_SYNTHETIC, fit_checkpoint, tiny_fit_args

from lightning_tsdfm import SyntheticDataModule, TeacherModule, TransformerConfig

pytestmark = pytest.mark.slow  # `tsdfm fit` in subprocesses, a run slowed to be killed mid-way

STEPS = 10


def _student_args(root: Path, teacher: Path, *extra: str) -> list[str]:
    args = tiny_fit_args("synthetic_student.yaml", root, *TINY_SYNTHETIC, "--model.init_args.teacher_steps=8",
                         f"--model.init_args.teacher_checkpoint={teacher}", "--trainer.callbacks+=TrajectoryShaper",
                         "--trainer.callbacks.compass=oracle", "--trainer.callbacks.num_candidates=2", *extra, steps=STEPS)
    config = Path(args[2])
    cfg = yaml.safe_load(config.read_text())
    cfg["trainer"]["callbacks"][0]["init_args"]["every_n_train_steps"] = 1  # FinalCheckpoint: last.ckpt every step
    config.write_text(yaml.safe_dump(cfg))
    return args


def _tsdfm(args: list[str], stderr=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.Popen([sys.executable, "-m", "lightning_tsdfm.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    teacher = TeacherModule(16, 16, backbone=TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, cond_size=32))
    data = SyntheticDataModule(vocab_size=16, num_states=8, seq_len=16, num_train=64, num_val=16, batch_size=8)
    return fit_checkpoint(teacher, tmp_path_factory.mktemp("teacher"), 2, data)


def _slow_run_past(root: Path, teacher: Path, step: int) -> subprocess.Popen:
    """A slowed shaped-student run, returned once its last.ckpt holds ``step`` (or it ended, or 240 s passed)."""
    process = _tsdfm(_student_args(root, teacher, "--trainer.callbacks+=lightning_helpers.SlowSteps"))
    deadline = time.monotonic() + 240
    while _step(root / "checkpoints" / "last.ckpt") < step and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def _step(path: Path) -> int:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)["global_step"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def test_a_killed_shaped_student_resumes_to_the_weights_of_an_uninterrupted_run(teacher, tmp_path):
    # the uninterrupted run goes on beside the run that is killed (its errors go to a file: no pipe fills meanwhile)
    straight_err = tmp_path / "straight.err"
    with straight_err.open("w") as err:
        uninterrupted = _tsdfm(_student_args(tmp_path / "straight", teacher), stderr=err)
    try:
        killed = tmp_path / "killed"
        last = killed / "checkpoints" / "last.ckpt"
        process = _slow_run_past(killed, teacher, 3)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
        stopped_at = _step(last)
        assert 3 <= stopped_at < STEPS

        _finish(_tsdfm([*_student_args(killed, teacher), f"--ckpt_path={last}"]))
        uninterrupted.wait(timeout=300)
    finally:
        if uninterrupted.poll() is None:
            uninterrupted.kill()
            uninterrupted.wait()
    assert uninterrupted.returncode == 0, straight_err.read_text()[-3000:]

    straight = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=False)
    resumed = torch.load(last, weights_only=False)
    assert straight["global_step"] == resumed["global_step"] == STEPS
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    for name, weight in straight["state_dict"].items():
        assert torch.equal(weight, resumed["state_dict"][name]), f"{name} differs after resuming from step {stopped_at}"


def test_a_run_stopped_by_sigterm_exits_143_with_its_checkpoint(teacher, tmp_path):
    """Lightning leaves a SIGTERMed fit with exit status 0; `tsdfm fit` reports 143, so a script that runs stages
    (mark done after success) does not take an interrupted run for a finished one."""
    run = tmp_path / "stopped"
    process = _slow_run_past(run, teacher, 2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "stopped by SIGTERM" in err
    assert 2 <= _step(run / "checkpoints" / "last.ckpt") < STEPS
