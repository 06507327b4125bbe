"""The GPU check's measurements (run by benchmarks/gpu_check.sh): the modules are built and trained from Python,
without the CLI, so torch and lightning are all the machine needs.

- ``train_throughput``: the 170M teacher (768 wide, 12 blocks, 12 heads, GPT-2's 50257 tokens, L=1024) trained
  in bf16 on random token blocks, once per attention backend (SDPA; flash-attn where installed): median seconds
  per optimizer step, tokens per second and model FLOPs utilisation. Model FLOPs per token are
  6 N + 12 n_layers d L (N: the weights of the per-token matrix products, blocks and head; the second term is
  attention's QK^T and AV, forward and backward), against the chip's dense bf16 peak.
- ``shaping_cost``: a 170M student distilled from that teacher, blind and shaped by a compass (4 x 256, as
  configs/owt_170m_compass.yaml) with K = 1, 4, 8 candidates per midpoint: median seconds per step.
- ``sampling_speed``: seconds per sequence of the teacher at 1024 steps and of the student at 8 steps.
- ``gpu_tests``: the outcome of the GPU-marked tests (run by the shell script).

``--tiny`` shrinks every size for a dry run on the CPU (its rows say ``size: tiny`` and ``device: cpu``). Rows go to
``<results-dir>/gpu_check.jsonl`` (those of the same device and size replaced) and a table to ``gpu_check.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from step_timer import StepTimer  # noqa: E402

from lightning_tsdfm import CompassModule, StudentModule, TeacherModule, TrajectoryShaper, TransformerConfig  # noqa: E402
from lightning_tsdfm.models.attention import flash_available  # noqa: E402
from lightning_tsdfm.modules.optim import OptimizerConfig  # noqa: E402

BENCHMARK = "gpu_check"
COLUMNS = ["check", "size", "device", "method", "attention_backend", "k", "steps", "batch_size", "seconds_per_step",
           "tokens_per_second", "mfu", "cost_vs_blind", "seconds_per_sequence", "speedup_vs_teacher", "status"]
#: dense bf16 peak of the chips this check is sized for (FLOP/s), by a word of torch.cuda.get_device_name()
PEAK_BF16 = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12}

SIZES = {
    "170m": dict(vocab_size=50257, seq_len=1024, batch_size=32, sample_batch=16, steps=20, warmup=5, shaping_steps=8,
                 teacher=TransformerConfig(768, 12, 12, cond_size=128, dropout=0.1),
                 compass=TransformerConfig(256, 4, 4, cond_size=128)),
    "tiny": dict(vocab_size=64, seq_len=16, batch_size=4, sample_batch=4, steps=3, warmup=1, shaping_steps=2,
                 teacher=TransformerConfig(32, 1, 2, mlp_ratio=2, cond_size=32),
                 compass=TransformerConfig(16, 1, 2, mlp_ratio=2, cond_size=16)),
}


class RandomTokens(Dataset):
    """``count`` blocks of ``seq_len`` uniform token ids, the same for every run (seeded by the index)."""

    def __init__(self, vocab_size: int, seq_len: int, count: int) -> None:
        self.vocab_size, self.seq_len, self.count = vocab_size, seq_len, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.randint(self.vocab_size, (self.seq_len,), generator=torch.Generator().manual_seed(index))


def fit(module: L.LightningModule, size: dict, steps: int, accelerator: str, callbacks=()) -> StepTimer:
    """Train ``module`` ``steps`` optimizer steps on random tokens; returns the timer of its steps."""
    timer = StepTimer()
    data = DataLoader(RandomTokens(size["vocab_size"], size["seq_len"], size["batch_size"] * steps),
                      batch_size=size["batch_size"], pin_memory=accelerator == "gpu")
    trainer = L.Trainer(accelerator=accelerator, devices=1, max_steps=steps, precision=precision(accelerator),
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer, *callbacks])
    trainer.fit(module, train_dataloaders=data)
    return timer


def precision(accelerator: str) -> str:
    return "bf16-mixed" if accelerator == "gpu" else "32-true"


def save(module: L.LightningModule, path: Path) -> str:
    """The weights of a fitted ``module`` as a checkpoint that the student, compass and shaper load."""
    module.trainer.save_checkpoint(path, weights_only=True)
    return str(path)


def flops_per_token(module: torch.nn.Module, config: TransformerConfig, seq_len: int) -> float:
    """6 N + 12 n_layers d L: N counts the weights of the per-token matrix products (attention, MLP, head)."""
    net = module.net
    per_token = [net.head] + [m for block in net.blocks for m in (block.qkv, block.proj, block.mlp[0], block.mlp[2])]
    weights = sum(m.weight.numel() for m in per_token)
    return 6 * weights + 12 * config.num_layers * config.hidden_size * seq_len


def device_name(accelerator: str) -> str:
    if accelerator != "gpu":
        return "cpu"
    name = torch.cuda.get_device_name(0)
    return next((chip.lower() for chip in PEAK_BF16 if chip in name), name.replace("NVIDIA ", "").lower())


def peak_flops(accelerator: str) -> float | None:
    if accelerator != "gpu":
        return None
    name = torch.cuda.get_device_name(0)
    return next((peak for chip, peak in PEAK_BF16.items() if chip in name), None)


def teacher_of(size: dict, backend: str) -> TeacherModule:
    torch.manual_seed(0)
    config = TransformerConfig(**{**size["teacher"].__dict__, "attention_backend": backend})
    return TeacherModule(size["vocab_size"], size["seq_len"], backbone=config, optimizer=OptimizerConfig(warmup_steps=10))


def train_throughput(size: dict, accelerator: str, common: dict) -> tuple[list[dict], TeacherModule]:
    rows, kept = [], None
    for backend in ("sdpa", "flash"):
        row = {**common, "check": "train_throughput", "method": "teacher", "source": "mask",
               "attention_backend": backend, "precision": precision(accelerator), "batch_size": size["batch_size"],
               "seq_len": size["seq_len"]}
        if backend == "flash" and not (accelerator == "gpu" and flash_available()):
            reason = "no CUDA device" if accelerator != "gpu" else "flash-attn is not installed (SDPA's flash kernels ran)"
            rows.append({**row, "status": f"skipped: {reason}"})
            continue
        teacher = teacher_of(size, backend)
        timer = fit(teacher, size, size["warmup"] + size["steps"], accelerator)
        seconds = statistics.median(timer.seconds[size["warmup"]:])
        tokens = size["batch_size"] * size["seq_len"] / seconds
        flops = flops_per_token(teacher, teacher.net.config, size["seq_len"]) * tokens
        peak = peak_flops(accelerator)
        rows.append({**row, "params": sum(p.numel() for p in teacher.parameters()), "steps": size["steps"],
                     "seconds_per_step": seconds, "tokens_per_second": tokens, "model_tflops": flops / 1e12,
                     "peak_tflops": None if peak is None else peak / 1e12, "mfu": None if peak is None else flops / peak,
                     "status": "ok"})
        kept = kept or teacher
    return rows, kept


def shaping_cost(size: dict, accelerator: str, teacher_path: str, compass_path: str, common: dict):
    rows, student = [], None
    steps, warmup = size["shaping_steps"], size["warmup"]
    for k in (None, 1, 4, 8):
        torch.manual_seed(0)
        module = StudentModule(teacher_path, size["vocab_size"], size["seq_len"], teacher_steps=1024,
                               optimizer=OptimizerConfig(warmup_steps=10))
        shaper = [] if k is None else [TrajectoryShaper(compass_path, num_candidates=k, policy="argmin")]
        timer = fit(module, size, warmup + steps, accelerator, shaper)
        rows.append({**common, "check": "shaping_cost", "method": "student-blind" if k is None else "student-shaped",
                     "source": "mask", "k": k, "policy": None if k is None else "argmin", "compass": "learned",
                     "steps": steps, "batch_size": size["batch_size"], "seq_len": size["seq_len"],
                     "seconds_per_step": statistics.median(timer.seconds[warmup:]), "status": "ok"})
        student = student or module
    blind = rows[0]["seconds_per_step"]
    return [{**row, "cost_vs_blind": row["seconds_per_step"] / blind} for row in rows], student


def sampling_speed(size: dict, accelerator: str, teacher: TeacherModule, student: StudentModule, common: dict):
    device = "cuda" if accelerator == "gpu" else "cpu"
    rows = []
    for method, module, steps in (("teacher", teacher, 1024), ("student-blind", student, 8)):
        module = module.to(device)
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            module.sample(size["sample_batch"], 1, generator=generator)  # warm-up
            start = time.perf_counter()
            module.sample(size["sample_batch"], steps, generator=generator)
            if device == "cuda":
                torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / size["sample_batch"]
        rows.append({**common, "check": "sampling_speed", "method": method, "source": "mask", "steps": steps,
                     "batch_size": size["sample_batch"], "seq_len": size["seq_len"], "repeats": 1,
                     "seconds_per_sequence": seconds, "status": "ok"})
    return [{**row, "speedup_vs_teacher": rows[0]["seconds_per_sequence"] / row["seconds_per_sequence"]}
            for row in rows]


def tests_status(exit_status: int, summary: str) -> str:
    """passed, skipped (every GPU test skipped: no CUDA device), no tests ran, or failed, from pytest's outcome."""
    if exit_status == 0:
        return "passed" if "passed" in summary else "skipped"
    return "no tests ran" if exit_status == 5 else f"failed (exit {exit_status})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on the CPU: the dry run of the tests")
    parser.add_argument("--results-dir", default=str(results_io.RESULTS), help="where gpu_check.{jsonl,md} go")
    parser.add_argument("--tests-exit", type=int, default=None, help="exit status of the GPU-marked tests")
    parser.add_argument("--tests-summary", default="", help="pytest's summary line of the GPU-marked tests")
    args = parser.parse_args()
    results_io.RESULTS = Path(args.results_dir)
    accelerator = "cpu" if args.tiny else "gpu"
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device; run with --tiny for the CPU dry run.")
    size_name = "tiny" if args.tiny else "170m"
    size = SIZES[size_name]
    common = {"benchmark": BENCHMARK, "dataset": "random-tokens", "size": size_name, "device": device_name(accelerator),
              "torch": torch.__version__, "lightning": L.__version__, "commit": results_io.git_commit(),
              "command": results_io.this_command()}
    warnings.filterwarnings("ignore", message=".*(does not have many workers|smaller than the logging interval).*")
    rows = []
    if args.tests_exit is not None:
        rows.append({**common, "check": "gpu_tests", "status": tests_status(args.tests_exit, args.tests_summary),
                     "tests_summary": args.tests_summary})
    started = time.perf_counter()
    throughput, teacher = train_throughput(size, accelerator, common)
    rows += throughput
    with tempfile.TemporaryDirectory() as scratch:
        teacher_path = save(teacher, Path(scratch) / "teacher.ckpt")
        compass = CompassModule(teacher_path, size["vocab_size"], size["seq_len"], backbone=size["compass"])
        fit(compass, size, 1, accelerator)
        compass_path = save(compass, Path(scratch) / "compass.ckpt")
        costs, student = shaping_cost(size, accelerator, teacher_path, compass_path, common)
        rows += costs
        rows += sampling_speed(size, accelerator, teacher, student, common)
    print(f"gpu_check: {len(rows)} rows in {time.perf_counter() - started:.0f} s")
    write_page(results_io.replace_rows(BENCHMARK, rows, device=common["device"], size=size_name))
    print(results_io.markdown_table(rows, COLUMNS))


def write_page(rows: list[dict]) -> None:
    """gpu_check.md: the table of every row."""
    (results_io.RESULTS / f"{BENCHMARK}.md").write_text(results_io.markdown_table(rows, COLUMNS) + "\n")


if __name__ == "__main__":
    main()
