"""Sampling speed: wall-clock seconds per generated sequence, median over repeats, same batch for every model.

    python benchmarks/speed.py --dataset synthetic \
        --model teacher:mask:1024=runs/synthetic_tiny_mask/checkpoints/last.ckpt \
        --model student-blind:mask:8=runs/synthetic_student_mask/checkpoints/last.ckpt

Each ``--model`` is METHOD:SOURCE:STEPS[:SAMPLER]=CHECKPOINT (SAMPLER: e.g. ``cached`` for MDLM). Writes benchmarks/results/speed.jsonl (rows of this
dataset replaced), speed.md; prints every model's speed-up over the first model of the same source.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from quality import parse_model  # noqa: E402
from results_io import git_commit, markdown_table, replace_rows, this_command  # noqa: E402

from lightning_tsdfm.modules import load_module  # noqa: E402

BENCHMARK = "speed"
COLUMNS = ["dataset", "source", "method", "sampler", "g", "steps", "seconds_per_sequence", "speedup_vs_first", "repeats", "batch_size", "device", "threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", action="append", required=True, help="METHOD:SOURCE:STEPS[:SAMPLER]=CHECKPOINT")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    common = {"benchmark": BENCHMARK, "dataset": args.dataset, "seed": args.seed, "commit": git_commit(),
              "command": this_command(), "batch_size": args.batch_size, "repeats": args.repeats,
              "device": args.device if args.device != "cpu" else f"cpu ({torch.get_num_threads()} threads)",
              "threads": torch.get_num_threads()}
    rows = []
    for method, source, step_list, checkpoint, sampler, shaping in map(parse_model, args.model):
        if shaping:
            raise SystemExit(f"--model {method}: the speed benchmark times blind sampling; drop the @COMPASS:K:POLICY part.")
        module = load_module(checkpoint, map_location=args.device)
        generator = torch.Generator(device=args.device).manual_seed(args.seed)
        module.sample(args.batch_size, 1, generator=generator, sampler=sampler)  # warm-up
        for steps in step_list:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                module.sample(args.batch_size, steps, generator=generator, sampler=sampler)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - start) / args.batch_size)
            rows.append({**common, "source": source, "method": method, "steps": steps, "checkpoint": checkpoint,
                         "sampler": sampler or module.samplers[0],
                         **(module.sampler_settings(sampler or module.samplers[0])
                            if hasattr(module, "sampler_settings") else {}),
                         "seconds_per_sequence": statistics.median(times), "all_seconds_per_sequence": times})
    for row in rows:
        first = next(r for r in rows if r["source"] == row["source"])
        row["speedup_vs_first"] = first["seconds_per_sequence"] / row["seconds_per_sequence"]
        print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)
    write_page(replace_rows(BENCHMARK, rows, dataset=args.dataset))


def write_page(rows: list[dict]) -> None:
    """speed.md: the table of every row."""
    (results_io.RESULTS / f"{BENCHMARK}.md").write_text(
        f"# {BENCHMARK}\n\nGenerated from {BENCHMARK}.jsonl by benchmarks/speed.py; commands are in the rows.\n\n"
        + markdown_table(rows, COLUMNS) + "\n"
    )


if __name__ == "__main__":
    main()
