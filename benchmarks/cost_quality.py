"""Quality per unit of sampling cost: matched perplexity against seconds per sequence and forward-equivalents.

    python benchmarks/cost_quality.py [--results-dir DIR]   # after quality.py --benchmark cost_quality --frontier ...

Reads DIR/cost_quality.jsonl (default benchmarks/results; written by quality.py: sweeps and matched-entropy rows)
and writes cost_quality.md and .png beside it. Per model and step count, at the 1024-step teacher's T = 1 entropy (the matched rows):
its perplexity, the ratio to the blind student at the same step count and to the 1024-step teacher (with the SE of
the log ratio: independent sample sets), the seconds per sequence of its sweep point nearest T = 1 (measured in the run
that sampled it) and the ratio to the 1024-step teacher's, and its forward-equivalents per sequence:

    N-step ancestral: N;   first-hitting: N (1 - (1 - 1/N)^L), the expected number of steps at which a token is
    revealed (kappa(t) = t);   guided: N + (guided steps) * K * M * (energy parameters / denoiser parameters),

K candidates per jump and M filler draws each for an energy over whole proposals (M = 1 otherwise).

An oracle energy is not a network: its forward-equivalents are left empty (its seconds are measured all the same).
Parameter counts and lengths are read from each checkpoint once and recorded beside the rows (checkpoint_sizes.py).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import checkpoint_sizes  # noqa: E402
import results_io  # noqa: E402
from quality import matched_ratio  # noqa: E402
from results_io import markdown_table, read_rows  # noqa: E402

from lightning_tsdfm.shaping import make_selection  # noqa: E402

BENCHMARK = "cost_quality"
REFERENCE = "teacher-1024"
#: the steps of the teacher whose T = 1 entropy is the reference
TEACHER_STEPS = 1024
COLUMNS = ["dataset", "method", "steps", "shaping", "compass_kind", "k", "m", "policy", "matched_gen_ppl", "ratio_to_blind",
           "log_ratio_se_blind", "ratio_to_teacher_1024", "log_ratio_se_teacher", "matched_reverse_ppl",
           "seconds_per_sequence", "time_vs_teacher_1024", "forward_equivalents"]


def first_hitting_forwards(steps: int, length: int) -> float:
    """E[# of the N steps at which at least one of L positions is revealed], reveal steps uniform (kappa(t) = t)."""
    return steps * (1 - (1 - 1 / steps) ** length)


def parameters(checkpoint: str, kind: str | tuple[str, ...]) -> int:
    """Parameters of the network of a checkpoint's module (its ``net``: no frozen teacher, no EMA copy)."""
    return checkpoint_sizes.size(checkpoint, kind)["parameters"]


def sequence_length(checkpoint: str) -> int:
    """L, the positions a checkpoint's denoiser samples."""
    return checkpoint_sizes.size(checkpoint, ("teacher", "student"))["seq_len"]


def energy_parameters(name: str) -> int | None:
    """Parameters of the energy named ``name`` (a compass, path LM or causal LM checkpoint); None for an oracle."""
    if name.startswith("oracle"):
        return None
    return parameters(name[3:], "causal_lm") if name.startswith("ar:") else parameters(name, ("compass", "path_lm"))


def forward_equivalents(sweep: dict, length: int, denoiser_parameters: int) -> float | None:
    steps, shaping = sweep["steps"], sweep.get("sampling_shaping")
    if sweep.get("sampler") == "first_hitting":
        return first_hitting_forwards(steps, length)
    if not shaping:
        return float(steps)
    energy = energy_parameters(shaping["compass"])
    if energy is None:
        return None
    window = make_selection("argmin", shape_from=shaping.get("shape_from") or 0.0,
                            shape_until=1.0 if shaping.get("shape_until") is None else shaping["shape_until"])
    guided = int(window.shapes(torch.arange(steps, dtype=torch.float64) / steps).sum())
    fillers = shaping.get("filler_draws") or 1
    return steps + guided * shaping["num_candidates"] * fillers * energy / denoiser_parameters


def nearest_to_one(points: list[dict]) -> dict:
    """The sweep point of a model whose sampling temperature is nearest T = 1 (its T = 1 point when it has one: a
    sweep that stops below 1, as guided samples' do, is timed at its warmest point)."""
    return min(points, key=lambda r: abs(r["sampling_temperature"] - 1.0))


def matched_rows(rows: list[dict], reference: str = REFERENCE) -> list[dict]:
    """The matched-entropy rows at ``reference``'s entropy (default: the 1024-step teacher's T = 1 entropy; "data":
    the data's) that hold a perplexity."""
    return [r for r in rows if r.get("reference") == reference and r.get("matched_gen_ppl")]


def matched_row(matched: list[dict], dataset: str, method: str, steps: int) -> dict | None:
    """The first of ``matched`` of ``method`` at ``steps`` on ``dataset``; None when there is none."""
    return next((m for m in matched if (m["dataset"], m["method"], m["steps"]) == (dataset, method, steps)), None)


def sweep_points(rows: list[dict]) -> list[dict]:
    """The temperature-sweep rows of the models (neither matched-entropy rows nor the data's)."""
    return [r for r in rows if not r.get("reference") and r["method"] != "data"]


def sweep_of(points: list[dict], row: dict) -> dict:
    """The sweep point of ``row``'s model (its dataset, method and steps) nearest T = 1."""
    return nearest_to_one([s for s in points if (s["dataset"], s["method"], s["steps"])
                           == (row["dataset"], row["method"], row["steps"])])


def cost_rows(rows: list[dict]) -> list[dict]:
    matched = matched_rows(rows)
    points = sweep_points(rows)
    sweeps = [r for r in points if r.get("sampling_temperature") == 1.0]
    out = []
    for row in matched:
        sweep = sweep_of(points, row)
        teacher = next((s for s in sweeps if s["dataset"] == row["dataset"] and s["method"] == "teacher"
                        and s["steps"] == TEACHER_STEPS), None)
        blind = matched_row(matched, row["dataset"], "student-blind", row["steps"])
        teacher_matched = matched_row(matched, row["dataset"], "teacher", TEACHER_STEPS)
        denoiser = parameters(sweep["checkpoint"], ("teacher", "student"))
        out.append({
            "dataset": row["dataset"], "method": row["method"], "steps": row["steps"],
            "shaping": "sampling" if sweep.get("sampling_shaping") else "distilled" if sweep.get("compass_kind") else None,
            "compass_kind": (sweep.get("sampling_shaping") or {}).get("compass_kind") or sweep.get("compass_kind"),
            "k": row.get("k"), "m": (sweep.get("sampling_shaping") or {}).get("filler_draws"),
            "policy": row.get("policy"), "matched_gen_ppl": row["matched_gen_ppl"],
            **_ratio("blind", row, blind), **_ratio("teacher_1024", row, teacher_matched),
            "matched_reverse_ppl": row.get("matched_reverse_ppl"),
            "seconds_per_sequence": sweep["seconds_per_sequence"],
            "time_vs_teacher_1024": sweep["seconds_per_sequence"] / teacher["seconds_per_sequence"] if teacher else None,
            "forward_equivalents": forward_equivalents(sweep, sequence_length(sweep["checkpoint"]), denoiser),
            "judge": row["judge"], "n_samples": sweep["n_samples"], "seed": sweep["seed"],
            "commit": sweep.get("commit"), "command": sweep.get("command")})
    return out


def _ratio(name: str, row: dict, baseline: dict | None) -> dict:
    se_key = "log_ratio_se_" + ("blind" if name == "blind" else "teacher")
    if baseline is None:
        return {f"ratio_to_{name}": None, se_key: None}
    ratio, se = matched_ratio(row, baseline)
    return {f"ratio_to_{name}": ratio, se_key: se}


def write_report(rows: list[dict], plot: bool = True) -> None:
    """The table (cost_quality.md) and, with ``plot``, perplexity against seconds per sequence (cost_quality.png)."""
    measured = "; ".join(f"{judge} judge, {n} samples, seed {seed}"
                         for judge, n, seed in sorted({(r["judge"], r["n_samples"], r["seed"]) for r in rows}))
    lines = ["# Quality per unit of sampling cost", "",
             f"Perplexity at the 1024-step teacher's T = 1 entropy ({measured}) against the seconds per sequence of "
             "the sweep point nearest T = 1 and forward-equivalents. Generated by benchmarks/cost_quality.py from "
             "cost_quality.jsonl; each row's command is in the jsonl.", "",
             markdown_table(rows, COLUMNS), ""]
    (results_io.RESULTS / f"{BENCHMARK}.md").write_text("\n".join(lines))
    if not plot:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for row in rows:
        ax.scatter(row["seconds_per_sequence"], row["matched_gen_ppl"], s=20)
        ax.annotate(f"{row['method']} {row['steps']}", (row["seconds_per_sequence"], row["matched_gen_ppl"]), fontsize=6)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per sequence (the point nearest T = 1)")
    ax.set_ylabel(f"perplexity at the {REFERENCE} entropy")
    fig.tight_layout()
    fig.savefig(results_io.RESULTS / f"{BENCHMARK}.png", dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(results_io.RESULTS),
                        help="where cost_quality.jsonl is read and the .md and .png written (default %(default)s)")
    results_io.RESULTS = Path(parser.parse_args(argv).results_dir)
    rows = cost_rows(read_rows(BENCHMARK))
    for row in rows:
        print(markdown_table([row], COLUMNS).splitlines()[-1])
    write_report(rows)


if __name__ == "__main__":
    main()
