"""Teacher quality versus sampling steps (the foundation table): generative perplexity and entropy at
1..1024 steps, both sources, next to the data's own perplexity and entropy. A shorthand for quality.py.

    python benchmarks/teacher_steps.py --dataset synthetic --config configs/synthetic_tiny.yaml \
        --checkpoint mask=runs/synthetic_tiny_mask/checkpoints/last.ckpt \
        --checkpoint uniform=runs/synthetic_tiny_uniform/checkpoints/last.ckpt --judges oracle

Writes benchmarks/results/teacher_steps.jsonl (rows of this dataset replaced), .md and .png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import quality  # noqa: E402


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
    steps = ",".join(map(str, args.steps))
    models = [f"teacher:{source}:{steps}={path}" for source, path in (c.split("=", 1) for c in args.checkpoint)]
    quality.run("teacher_steps", args.dataset, args.config, models, args.judges, args.num_samples, args.seed,
                args.batch_size, args.samples_dir)


if __name__ == "__main__":
    main()
