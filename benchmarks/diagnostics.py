"""Student quality against training steps: every checkpoint a run kept, sampled at each step count, next to the data.

    python benchmarks/diagnostics.py --dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle \
        --run student-blind:mask=runs/small_student_mask \
        --run student-shaped-is16:mask=runs/small_is16_student_mask --steps 1,2,4,8,16

Each ``--run`` is METHOD:SOURCE=RUN_DIR; every ``*.ckpt`` under RUN_DIR counts once per optimizer step (``last.ckpt``
repeats the final one). A run keeps its intermediate checkpoints when trained with one more checkpoint callback,
``--trainer.callbacks+=ModelCheckpoint --trainer.callbacks.dirpath=RUN_DIR/diagnostics
--trainer.callbacks.every_n_train_steps=1000 --trainer.callbacks.save_top_k=-1``.
For every checkpoint, step count and judge one row (sampling temperature 1): generative perplexity, its standard
error, unigram entropy, reverse perplexity and distinct 4-grams (synthetic data), sample count, seed and
``train_steps``. Writes benchmarks/results/diagnostics.jsonl (the rows of the runs measured now replaced), .md
and .png: perplexity against training steps per step count, and each run's ratio to the first run (the blind
student) at equal training and sampling steps, which says at which step-size level a gain appears or is lost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from quality import Reference, training_provenance  # noqa: E402
from results_io import git_commit, markdown_table, replace_rows, this_command  # noqa: E402

from lightning_tsdfm.samples_io import generate_samples  # noqa: E402

COLUMNS = ["dataset", "source", "method", "train_steps", "steps", "judge", "gen_ppl", "nll_stderr", "entropy",
           "reverse_ppl", "distinct_4", "n_samples", "seed", "compass", "k", "policy", "trajectory"]


def parse_run(spec: str) -> tuple[str, str, Path]:
    """METHOD:SOURCE=RUN_DIR -> (method, source, run directory)."""
    try:
        name, run_dir = spec.split("=", 1)
        method, source = name.split(":")
    except ValueError as err:
        raise SystemExit(f"--run {spec!r}: expected METHOD:SOURCE=RUN_DIR, e.g. student-blind:mask=runs/student") from err
    if not Path(run_dir).is_dir():
        raise SystemExit(f"--run {spec!r}: {run_dir} is not a directory.")
    return method, source, Path(run_dir)


def checkpoints_by_step(run_dir: Path) -> dict[int, str]:
    """{optimizer step: checkpoint} over every ``*.ckpt`` under ``run_dir``, one file per step."""
    found: dict[int, str] = {}
    for path in sorted(run_dir.rglob("*.ckpt"), key=lambda p: p.name == "last.ckpt"):  # named files first
        found.setdefault(training_provenance(str(path))["train_steps"], str(path))
    if not found:
        raise SystemExit(f"No checkpoint under {run_dir}: train the run first (see --help for keeping every checkpoint).")
    return dict(sorted(found.items()))


def run(dataset: str, config: str, runs: list[str], judge_specs: list[str], steps: list[int], num_samples: int,
        seed: int, batch_size: int | None) -> list[dict]:
    common = {"benchmark": "diagnostics", "dataset": dataset, "seed": seed, "commit": git_commit(),
              "command": this_command()}
    ref = Reference.of(config, judge_specs, num_samples, seed, common)
    rows = list(ref.rows)
    for method, source, run_dir in map(parse_run, runs):
        for train_steps, checkpoint in checkpoints_by_step(run_dir).items():
            provenance = training_provenance(checkpoint)
            for n in steps:
                samples = generate_samples(checkpoint, n, num_samples, seed, batch_size)
                if samples.meta["source"] != source:
                    raise SystemExit(f"{checkpoint} was trained with the {samples.meta['source']} source, not {source}.")
                identity = {**common, "source": source, "method": method, "steps": n, "sampling_temperature": 1.0,
                            "checkpoint": checkpoint, **provenance}
                for row in ref.judged(samples.tokens, samples.texts, identity):
                    rows.append(row)
                    print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)
    measured = {(r["method"], r["source"]) for r in rows if r["method"] != "data"}
    all_rows = replace_rows("diagnostics", rows, lambda r: (r["method"], r["source"]) in measured or r["method"] == "data",
                            dataset=dataset)
    write_report(all_rows, parse_run(runs[0])[0])
    return all_rows


def ratio_to_first(rows: list[dict], first: str) -> list[dict]:
    """Every run's perplexity over the first run's at equal dataset, source, judge, training and sampling steps."""
    def where(r: dict) -> tuple:
        return r["dataset"], r["source"], r["judge"], r["train_steps"], r["steps"]

    base = {where(r): r for r in rows if r["method"] == first}
    return [{**{k: r[k] for k in ("dataset", "source", "judge", "train_steps", "steps", "method")},
             "ratio": r["gen_ppl"] / base[where(r)]["gen_ppl"]}
            for r in rows if r["method"] not in ("data", first) and where(r) in base]


def write_report(rows: list[dict], first: str, plot: bool = True) -> None:
    """The table and the ratios to ``first`` (diagnostics.md) and, with ``plot``, both against training steps (.png)."""
    rows = sorted(rows, key=lambda r: (r["dataset"], r["source"], r["method"], r.get("train_steps") or 0, r["steps"] or 0))
    ratios = ratio_to_first(rows, first)
    (results_io.RESULTS / "diagnostics.md").write_text(
        "# diagnostics\n\nGenerated from diagnostics.jsonl by benchmarks/diagnostics.py; commands are in the rows.\n\n"
        + markdown_table(rows, COLUMNS) + f"\n\n## Perplexity over {first}'s at equal training and sampling steps\n\n"
        + markdown_table(ratios, ["dataset", "source", "judge", "method", "train_steps", "steps", "ratio"]) + "\n")
    if not plot:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["dataset"], r["judge"], r["source"]) for r in rows if r["method"] != "data"})
    fig, axes = plt.subplots(2, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 8), squeeze=False)
    for col, (dataset, judge, source) in enumerate(panels):
        here = [r for r in rows if (r["dataset"], r["judge"], r["source"]) == (dataset, judge, source)]
        for method in sorted({r["method"] for r in here if r["method"] != "data"}):
            for n in sorted({r["steps"] for r in here if r["method"] == method}):
                pts = [(r["train_steps"], r["gen_ppl"]) for r in here if (r["method"], r["steps"]) == (method, n)]
                axes[0][col].plot(*zip(*pts), "o-", label=f"{method}, {n} steps")
        for r in here:
            if r["method"] == "data":
                axes[0][col].axhline(r["gen_ppl"], color="k", ls=":", label="data")
        axes[0][col].set(yscale="log", title=f"{dataset} ({source}), judge {judge}", ylabel="generative perplexity")
        axes[0][col].legend(fontsize=6)
        mine = [r for r in ratios if (r["dataset"], r["judge"], r["source"]) == (dataset, judge, source)]
        for method, n in sorted({(r["method"], r["steps"]) for r in mine}):
            pts = [(r["train_steps"], r["ratio"]) for r in mine if (r["method"], r["steps"]) == (method, n)]
            axes[1][col].plot(*zip(*pts), "o-", label=f"{method}, {n} steps")
        axes[1][col].axhline(1.0, color="k", ls=":")
        axes[1][col].set(xlabel="training steps", ylabel=f"perplexity / {first}'s")
        if mine:
            axes[1][col].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(results_io.RESULTS / "diagnostics.png", dpi=110)
    print(f"wrote {results_io.RESULTS / 'diagnostics'}.jsonl, .md and .png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset name in the rows: synthetic, synthetic-textlike, ...")
    parser.add_argument("--config", required=True, help="the training config (its data section gives held-out data)")
    parser.add_argument("--run", action="append", required=True,
                        help="METHOD:SOURCE=RUN_DIR, the first one the reference of the ratios (the blind student)")
    parser.add_argument("--steps", default="1,2,4,8,16", help="comma-separated sampling step counts")
    parser.add_argument("--judges", nargs="+", default=["oracle"], help="oracle | smollm2 | ar:<ckpt> | hf:<model>")
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", default=str(results_io.RESULTS), help="where the .jsonl, .md and .png go")
    args = parser.parse_args()
    results_io.RESULTS = Path(args.results_dir)
    run(args.dataset, args.config, args.run, args.judges, [int(s) for s in args.steps.split(",")], args.num_samples,
        args.seed, args.batch_size)


if __name__ == "__main__":
    main()
