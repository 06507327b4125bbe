"""One run directory, one run: a `tsdfm fit` holds its run directory while it runs (a lock file naming its process),
so a second run started into it is refused with one line instead of writing its checkpoints beside the first's; the
lock of a run that was killed is taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lightning_helpers import TINY_BACKBONE, TINY_SYNTHETIC, tiny_fit_args

from lightning_tsdfm.cli import main
from lightning_tsdfm.run_directory import LOCK


def _fit(root: Path, *extra: str, steps: int = 2) -> list[str]:
    return tiny_fit_args("synthetic_tiny.yaml", root, *TINY_BACKBONE, *TINY_SYNTHETIC, *extra, steps=steps)


def _refused(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if line.startswith("tsdfm: error:")]
    return line


@pytest.mark.slow  # a `tsdfm fit` subprocess, slowed to be running while the second fit is refused
def test_a_second_fit_into_a_run_directory_in_use_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    first = subprocess.Popen([sys.executable, "-m", "lightning_tsdfm.cli",
                              *_fit(run, "--trainer.callbacks+=lightning_helpers.SlowSteps", steps=6)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / LOCK).is_file() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (run / LOCK).read_text().split()[0] == str(first.pid)
        line = _refused(_fit(run, "--overwrite"), capsys)
        assert f"The run directory {run} is in use by another run (process {first.pid} on " in line, line
        assert f"delete {run / LOCK}" in line
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]  # no last-v1.ckpt beside it
    assert not (run / LOCK).exists()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid no process has any more
    (tmp_path / LOCK).write_text(f"{gone.pid} {socket.gethostname()}\n")
    main(_fit(tmp_path))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and not (tmp_path / LOCK).exists()


def test_a_lock_that_cannot_be_checked_is_refused(tmp_path, monkeypatch, capsys):
    """A lock of another host (a shared file system), or one whose process is this one, is never taken over."""
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    for holder in (f"{os.getpid()} other-host", f"{os.getpid()} {socket.gethostname()}"):
        (tmp_path / LOCK).write_text(holder + "\n")
        assert "is in use by another run (process" in _refused(_fit(tmp_path), capsys)
        assert (tmp_path / LOCK).read_text() == holder + "\n" and not (tmp_path / "checkpoints").exists()
