"""Result rows name the commit they were measured at, also in a tree exported with ``git archive``."""

import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=True)


def test_an_archived_tree_names_its_commit(tmp_path):
    archive = tmp_path / "head.tar"
    archive.write_bytes(_git("archive", "HEAD", "benchmarks/results_io.py").stdout)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "tree", filter="data")
    code = "import results_io; print(results_io.git_commit())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "tree" / "benchmarks",
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _git("log", "-1", "--format=%h", "HEAD").stdout.decode().strip()


def test_a_checkout_names_its_commit():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import results_io

    head = _git("rev-parse", "--short", "HEAD").stdout.decode().strip()
    assert results_io.git_commit().removesuffix("-dirty") == head
