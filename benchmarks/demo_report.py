"""The demo's one page: its models at matched entropy with their cost, and the seconds each stage took.

    python benchmarks/demo_report.py runs/demo     # after the quality stage of `make demo`

Reads DIR/cost_quality.jsonl (quality.py's sweeps and matched rows: perplexity interpolated at the 1024-step
teacher's T = 1 entropy, ratios to the blind student and to that teacher with the SE of the log ratio) and
DIR/<stage>.seconds (written by the Makefile around each stage), and writes DIR/demo.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cost_quality  # noqa: E402
import results_io  # noqa: E402
from results_io import markdown_table, read_rows  # noqa: E402

COLUMNS = ["method", "steps", "k", "m", "matched_gen_ppl", "ratio_to_blind", "log_ratio_se_blind",
           "ratio_to_teacher_1024", "log_ratio_se_teacher", "seconds_per_sequence", "time_vs_teacher_1024"]
STAGES = ["teacher", "path_lm", "student_blind", "quality"]


def stage_seconds(directory: Path) -> list[dict]:
    """The recorded seconds of each stage that has run, and their sum."""
    rows = [{"stage": stage, "seconds": int((directory / f"{stage}.seconds").read_text())}
            for stage in STAGES if (directory / f"{stage}.seconds").exists()]
    return rows + [{"stage": "total", "seconds": sum(r["seconds"] for r in rows)}]


def report(directory: Path) -> str:
    results_io.RESULTS = directory
    rows = cost_quality.cost_rows(read_rows(cost_quality.BENCHMARK))
    if not rows:
        raise SystemExit(f"demo_report.py: no matched rows in {directory / 'cost_quality.jsonl'}: run the quality "
                         "stage of `make demo` first.")
    reference = next(r for r in read_rows(cost_quality.BENCHMARK) if r.get("reference") == cost_quality.REFERENCE)
    measured = "; ".join(f"{judge} judge, {n} samples, seed {seed}"
                         for judge, n, seed in sorted({(r["judge"], r["n_samples"], r["seed"]) for r in rows}))
    return "\n".join([
        "# make demo", "",
        f"Perplexity of each model's samples interpolated at the entropy of the 1024-step teacher's (T = 1), "
        f"{reference['reference_entropy']:.3f} nats ({measured}); ratios with the standard error of their log. "
        "k: candidates per jump, m: filler draws per candidate, of the student guided by the path LM while it samples.",
        "", markdown_table(sorted(rows, key=lambda r: (r["steps"], r["method"])), COLUMNS), "",
        "Seconds per stage (wall clock):", "", markdown_table(stage_seconds(directory), ["stage", "seconds"]), ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="the demo's run directory (runs/demo)")
    directory = parser.parse_args(argv).directory
    text = report(directory)
    (directory / "demo.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
