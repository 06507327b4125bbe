"""Teacher quality versus sampling steps: generative perplexity and entropy at 1..1024 steps, both sources,
next to the data's own perplexity and entropy.

    python benchmarks/teacher_steps.py --dataset synthetic --config configs/synthetic_tiny.yaml \
        --checkpoint mask=runs/synthetic_tiny_mask/checkpoints/last.ckpt \
        --checkpoint uniform=runs/synthetic_tiny_uniform/checkpoints/last.ckpt --judges oracle

Writes benchmarks/results/teacher_steps.jsonl (rows of this dataset replaced), .md and .png.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from results_io import RESULTS, git_commit, markdown_table, replace_rows, this_command  # noqa: E402

from lightning_tsdfm.data.decoding import decoder_from_card  # noqa: E402
from lightning_tsdfm.metrics.entropy import unigram_entropy  # noqa: E402
from lightning_tsdfm.metrics.evaluate import evaluate_samples  # noqa: E402
from lightning_tsdfm.metrics.judges import build_judge  # noqa: E402
from lightning_tsdfm.samples_io import generate_samples, write_jsonl  # noqa: E402

BENCHMARK = "teacher_steps"
COLUMNS = ["dataset", "source", "method", "steps", "judge", "gen_ppl", "entropy", "n_samples", "seed", "seconds_per_sequence"]


def datamodule_from_config(config: str):
    """The DataModule a training config describes (class_path + init_args), for held-out reference rows."""
    import importlib

    spec = yaml.safe_load(Path(config).read_text())["data"]
    module_name, _, class_name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**spec.get("init_args", {}))


def data_rows(datamodule, judges, card, n: int, seed: int, common: dict) -> list[dict]:
    """Reference rows (method=data): the judges' perplexity and the entropy of real held-out data."""
    rows = []
    if card["kind"] == "synthetic":
        tokens = datamodule.heldout_tokens(n, seed)
        texts = None
        ppl, stderr = datamodule.language.true_perplexity(datamodule.seq_len, num_sequences=8192, seed=seed)
        rows.append({**common, "source": "-", "method": "data", "steps": None, "judge": "oracle-exact", "gen_ppl": ppl,
                     "entropy": unigram_entropy(tokens).mean().item(), "n_samples": 8192, "nll_stderr": stderr})
    else:
        tokens = datamodule.heldout_tokens(n, seed)
        texts = decoder_from_card(card)(tokens)
    for judge in judges:
        scores = evaluate_samples(judge, tokens, texts)
        rows.append({**common, "source": "-", "method": "data", "steps": None, **scores})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset name in the rows: synthetic, web-bible, ...")
    parser.add_argument("--config", required=True, help="the training config (its data section gives held-out data)")
    parser.add_argument("--checkpoint", action="append", required=True, help="SOURCE=PATH, once per source")
    parser.add_argument("--judges", nargs="+", default=["oracle"], help="oracle | smollm2 | ar:<ckpt> | hf:<model>")
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 16, 64, 256, 1024])
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-dir", default="runs/benchmarks/samples", help="where the sample JSONL files go")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    common = {"benchmark": BENCHMARK, "dataset": args.dataset, "seed": args.seed, "commit": git_commit(), "command": this_command()}
    datamodule = datamodule_from_config(args.config)
    datamodule.prepare_data()
    card = datamodule.data_card()
    judges = [build_judge(spec, card) for spec in args.judges]
    rows = data_rows(datamodule, judges, card, args.num_samples, args.seed, common)
    for source, checkpoint in checkpoints.items():
        for steps in args.steps:
            samples = generate_samples(checkpoint, steps, args.num_samples, args.seed, args.batch_size)
            if samples.meta["source"] != source:
                raise ValueError(f"{checkpoint} was trained with the {samples.meta['source']} source, not {source}.")
            write_jsonl(samples, Path(args.samples_dir) / f"{args.dataset}_{source}_teacher_{steps}.jsonl")
            for judge in judges:
                scores = evaluate_samples(judge, samples.tokens, samples.texts)
                row = {**common, "source": source, "method": "teacher", "steps": steps, **scores,
                       "seconds_per_sequence": samples.meta["seconds_per_sequence"], "dtype": samples.meta["dtype"],
                       "checkpoint": checkpoint}
                rows.append(row)
                print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)
            if steps == max(args.steps):
                for text in samples.texts[:3]:
                    print(f"  [{source}, {steps} steps] {text[:300]}")
    all_rows = replace_rows(BENCHMARK, args.dataset, rows)
    write_report(all_rows)


def write_report(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (RESULTS / f"{BENCHMARK}.md").write_text(
        f"# {BENCHMARK}\n\nGenerated from {BENCHMARK}.jsonl by benchmarks/teacher_steps.py; commands are in the rows.\n\n"
        + markdown_table(rows, COLUMNS) + "\n"
    )
    panels = sorted({(r["dataset"], r["judge"]) for r in rows if r["method"] != "data"})
    fig, axes = plt.subplots(2, max(1, len(panels)), figsize=(4.5 * max(1, len(panels)), 7), squeeze=False)
    for col, (dataset, judge) in enumerate(panels):
        ax_ppl, ax_ent = axes[0][col], axes[1][col]
        for source in sorted({r["source"] for r in rows if r["dataset"] == dataset and r["method"] == "teacher"}):
            pts = sorted((r["steps"], r["gen_ppl"], r["entropy"]) for r in rows
                         if (r["dataset"], r["judge"], r["source"], r["method"]) == (dataset, judge, source, "teacher"))
            ax_ppl.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"teacher ({source})")
            ax_ent.plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=f"teacher ({source})")
        for r in rows:
            if r["dataset"] == dataset and r["method"] == "data" and r["judge"].startswith(judge):
                ax_ppl.axhline(r["gen_ppl"], color="k", ls="--", label="data")
                ax_ent.axhline(r["entropy"], color="k", ls="--", label="data")
                break
        ax_ppl.set(xscale="log", yscale="log", title=f"{dataset}, judge {judge}", ylabel="generative perplexity")
        ax_ent.set(xscale="log", xlabel="sampling steps", ylabel="unigram entropy (nats)")
        ax_ppl.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{BENCHMARK}.png", dpi=110)
    print(f"wrote {RESULTS / BENCHMARK}.jsonl, .md and .png")


if __name__ == "__main__":
    main()
