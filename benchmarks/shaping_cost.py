"""Shaping cost: distillation throughput (optimizer steps per second) of the student, blind and shaped with
K = 1, 2, 4, 8 candidates per midpoint, same teacher, data and batch.

    python benchmarks/shaping_cost.py --dataset synthetic --config configs/synthetic_student.yaml \
        --teacher runs/synthetic_tiny_mask/checkpoints/last.ckpt \
        --compass runs/synthetic_compass_mask/checkpoints/last.ckpt --num_candidates 1 2 4 8

Each setting trains a fresh student for ``--warmup`` + ``--steps`` optimizer steps; the row is the median
wall-clock seconds of the timed steps. Writes benchmarks/results/shaping_cost.{jsonl,md} (rows of this
dataset and source replaced).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from quality import datamodule_from_config  # noqa: E402
from results_io import git_commit, markdown_table, replace_rows, this_command  # noqa: E402
from step_timer import StepTimer  # noqa: E402

from lightning_tsdfm import StudentModule, TrajectoryShaper  # noqa: E402
from lightning_tsdfm.config_file import read_config  # noqa: E402
from lightning_tsdfm.modules import read_checkpoint  # noqa: E402

BENCHMARK = "shaping_cost"
COLUMNS = ["dataset", "source", "method", "k", "policy", "seconds_per_step", "steps_per_second", "cost_vs_blind",
           "steps", "batch_size", "device"]


def time_distillation(config: str, teacher: str, shaper: TrajectoryShaper | None, steps: int, warmup: int,
                      accelerator: str) -> float:
    """Median seconds per optimizer step after ``warmup`` steps."""
    datamodule = datamodule_from_config(config)
    student_args = _student_args(config)
    torch.manual_seed(0)
    student = StudentModule(teacher, datamodule.vocab_size, datamodule.seq_len, **student_args)
    timer = StepTimer()
    trainer = L.Trainer(max_steps=warmup + steps, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer] + ([shaper] if shaper else []))
    trainer.fit(student, datamodule=datamodule)
    return statistics.median(timer.seconds[warmup:])


def _student_args(config: str) -> dict:
    args = dict(read_config(config)["model"]["init_args"])
    args.pop("teacher_checkpoint", None)
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--config", required=True, help="a student config (its model and data sections are used)")
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--compass", required=True)
    parser.add_argument("--num_candidates", "--k", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--policy", default="argmin")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()

    source = read_checkpoint(args.teacher, expected_kind="teacher")["hyper_parameters"]["source"]
    device = f"cpu ({torch.get_num_threads()} threads)" if args.accelerator == "cpu" else args.accelerator
    batch_size = datamodule_from_config(args.config).batch_size
    common = {"benchmark": BENCHMARK, "dataset": args.dataset, "source": source, "commit": git_commit(),
              "command": this_command(), "steps": args.steps, "batch_size": batch_size, "device": device,
              "teacher": args.teacher, "compass": args.compass}
    blind = time_distillation(args.config, args.teacher, None, args.steps, args.warmup, args.accelerator)
    rows = [{**common, "method": "student-blind", "k": None, "policy": None, "seconds_per_step": blind}]
    for k in args.num_candidates:
        shaper = TrajectoryShaper(args.compass, num_candidates=k, policy=args.policy)
        seconds = time_distillation(args.config, args.teacher, shaper, args.steps, args.warmup, args.accelerator)
        rows.append({**common, "method": "student-shaped", "k": k, "policy": args.policy, "seconds_per_step": seconds})
    for row in rows:
        row["steps_per_second"] = 1.0 / row["seconds_per_step"]
        row["cost_vs_blind"] = row["seconds_per_step"] / blind
        print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)
    write_page(replace_rows(BENCHMARK, rows, dataset=args.dataset, source=source))


def write_page(rows: list[dict]) -> None:
    """shaping_cost.md: the table of every row."""
    (results_io.RESULTS / f"{BENCHMARK}.md").write_text(
        f"# {BENCHMARK}\n\nGenerated from {BENCHMARK}.jsonl by benchmarks/shaping_cost.py; commands are in the rows.\n\n"
        + markdown_table(rows, COLUMNS) + "\n")


if __name__ == "__main__":
    main()
