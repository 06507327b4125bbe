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


def test_only_changes_outside_the_pages_make_a_row_dirty(tmp_path):
    """The results and the README's generated table are the benchmarks' output: changing them leaves the commit
    clean; changing anything else marks it -dirty."""
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              capture_output=True, check=True)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results_io.py").write_text((REPO / "benchmarks" / "results_io.py").read_text())
    for name in ("README.md", "benchmarks/results/rows.jsonl", "code.py"):
        (tmp_path / name).write_text("0\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    code = "import results_io; print(results_io.git_commit())"

    def commit() -> str:
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "benchmarks", capture_output=True,
                              text=True, check=True).stdout.strip()

    (tmp_path / "README.md").write_text("1\n")
    (tmp_path / "benchmarks" / "results" / "rows.jsonl").write_text("1\n")
    assert not commit().endswith("-dirty")
    (tmp_path / "code.py").write_text("1\n")
    assert commit().endswith("-dirty")
