"""Shared by the benchmarks: rows in benchmarks/results/<benchmark>.jsonl, and the table and plot made from them.

Rows are written by benchmark scripts only. Re-running a benchmark for one dataset replaces that dataset's
rows and regenerates the table (``<benchmark>.md``) and plot (``<benchmark>.png``) from all rows.
"""

from __future__ import annotations

import fcntl
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


#: ``git archive`` writes the archived commit here (export-subst in .gitattributes): a tree exported from the
#: repository, without its .git, still names the commit its rows were measured at
ARCHIVED_COMMIT = "$Format:%h$"


#: the results directory as a path from the repository root (its changes do not make a measurement's code dirty)
RESULTS_IN_REPOSITORY = "benchmarks/results"
#: what the pages write, from the repository root: the results, and the README's generated glance tables
PAGES_IN_REPOSITORY = (RESULTS_IN_REPOSITORY, "README.md")


def git_commit() -> str:
    """The checkout's short commit (with -dirty for uncommitted changes outside the pages, which are the benchmarks'
    own output, not what they measure), else the archived commit, else unknown."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
                                *(f":(exclude,top){path}" for path in PAGES_IN_REPOSITORY)],
                               capture_output=True, text=True, cwd=Path(__file__).parent)
    except OSError:
        out = None
    if out is not None and out.returncode == 0:
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    return "unknown" if ARCHIVED_COMMIT.startswith("$Format") else ARCHIVED_COMMIT


def this_command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def replace_rows(benchmark: str, rows: list[dict], replaced: Callable[[dict], bool] | None = None, **match) -> list[dict]:
    """Drop the stored rows whose fields equal ``match`` (e.g. dataset="synthetic") and, when given, for which
    ``replaced(row)`` is true; append ``rows``, write the file, return all rows."""
    with locked(benchmark):
        kept = [r for r in read_rows(benchmark)
                if any(r.get(k) != v for k, v in match.items()) or (replaced is not None and not replaced(r))]
        all_rows = kept + rows
        write_rows(RESULTS / f"{benchmark}.jsonl", all_rows)
    return all_rows


@contextmanager
def locked(benchmark: str) -> Iterator[None]:
    """Hold ``<benchmark>.lock`` for the block: two benchmark runs may finish at once, one writes at a time."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{benchmark}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_rows(path: Path, rows: list[dict]) -> None:
    """``rows`` as the JSON lines of ``path``, replaced at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def read_rows(benchmark: str) -> list[dict]:
    path = RESULTS / f"{benchmark}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
