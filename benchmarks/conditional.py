"""Conditional quality on a synthetic language: held-out sequences with positions hidden, completed by each model,
the completions scored exactly by the language (the oracle given what was known).

    python benchmarks/conditional.py --dataset synthetic-textlike --config configs/textlike_teacher.yaml \
        --template prefix:64 --template infill:32:96 --num-conditions 256 --seed 0 \
        --model teacher:1024:first_hitting=runs/textlike_teacher_mask/checkpoints/last.ckpt \
        --model student-blind:8=runs/textlike_student_mask/checkpoints/last.ckpt

Each ``--template`` says which positions are known: ``prefix:P`` (the first P; the rest is continued) or
``infill:A:B`` (every position but A .. B-1, which are filled). Each ``--model`` is METHOD:STEPS[:SAMPLER]=CHECKPOINT
(STEPS comma-separated; SAMPLER one of the checkpoint's samplers, default its first). For every template the same
``--num-conditions`` held-out sequences give the known tokens, and every model completes each of them once. One row
per template, model and step count: the conditional perplexity of the filled positions, log p(x_F | x_K) by the
forward algorithm (:mod:`lightning_tsdfm.metrics.conditional`), with its standard error, its reverse perplexity on
other held-out sequences, the mean entropy of the filled tokens, the sample count, seed, command and commit. A data row
(method=data) scores the held-out sequences' own completions: the language's conditional entropy, the floor a perfect
completer reaches at its entropy. Writes benchmarks/results/conditional.jsonl (the rows of the models, templates and
steps measured replaced) and conditional.md; the completions go to --samples-dir.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from quality import datamodule_from_config  # noqa: E402
from results_io import git_commit, markdown_table, replace_rows, this_command  # noqa: E402

from lightning_tsdfm.conditioning import Given  # noqa: E402
from lightning_tsdfm.metrics.conditional import (  # noqa: E402
    conditional_perplexity,
    conditional_reverse_perplexity,
    filled_entropy,
)
from lightning_tsdfm.samples_io import generate_samples, write_jsonl  # noqa: E402

BENCHMARK = "conditional"
COLUMNS = ["dataset", "template", "known_tokens", "filled_tokens", "source", "method", "steps", "sampler",
           "sampling_temperature", "cond_ppl", "nll_stderr", "entropy", "reverse_ppl", "n_samples", "seed", "commit"]
#: held-out sequences the reverse perplexity scores (other than the conditions)
REVERSE_SEQUENCES = 2048


def known_positions(template: str, seq_len: int) -> torch.Tensor:
    """Bool [seq_len] of the known positions of ``prefix:P`` or ``infill:A:B``."""
    kind, *bounds = template.split(":")
    try:
        numbers = [int(b) for b in bounds]
    except ValueError:
        numbers = []
    known = torch.zeros(seq_len, dtype=torch.bool)
    if kind == "prefix" and len(numbers) == 1 and 0 <= numbers[0] < seq_len:
        known[: numbers[0]] = True
    elif kind == "infill" and len(numbers) == 2 and 0 <= numbers[0] < numbers[1] <= seq_len:
        known[:] = True
        known[numbers[0]: numbers[1]] = False
    else:
        raise SystemExit(f"--template {template!r}: expected prefix:P (0 <= P < {seq_len}) or infill:A:B "
                         f"(0 <= A < B <= {seq_len}).")
    return known


def parse_model(spec: str) -> tuple[str, list[int], str | None, str]:
    """METHOD:STEPS[:SAMPLER]=CHECKPOINT -> (method, [steps], sampler or None, checkpoint)."""
    try:
        name, checkpoint = spec.split("=", 1)
        method, steps, *sampler = name.split(":")
        if len(sampler) > 1:
            raise ValueError(name)
        return method, [int(s) for s in steps.split(",")], (sampler[0] if sampler else None), checkpoint
    except ValueError:
        raise SystemExit(f"--model {spec!r}: expected METHOD:STEPS[:SAMPLER]=CHECKPOINT, e.g. "
                         f"teacher:1024:first_hitting=last.ckpt or student-blind:4,8=last.ckpt") from None


def scored(language, tokens: torch.Tensor, known: torch.Tensor, reference: torch.Tensor, vocab_size: int) -> dict:
    """The conditional figures of completions ``tokens`` [N, L] whose ``known`` [N, L] positions were given."""
    reference_known = known[:1].expand(len(reference), -1)
    return {**conditional_perplexity(language, tokens, known),
            "entropy": filled_entropy(tokens, known).mean().item(),
            "reverse_ppl": conditional_reverse_perplexity(tokens, known, reference, reference_known, vocab_size),
            "known_tokens": int(known[0].sum()), "filled_tokens": int((~known[0]).sum()), "n_samples": len(tokens)}


def run(dataset: str, config: str, templates: list[str], models: list[str], num_conditions: int, seed: int,
        batch_size: int | None, samples_dir: str, temperature: float = 1.0) -> list[dict]:
    datamodule = datamodule_from_config(config)
    card = datamodule.data_card()
    if card["kind"] != "synthetic":
        raise SystemExit(f"{config} describes {card['kind']} data: the conditional oracle needs a synthetic language.")
    language, seq_len, vocab_size = datamodule.language, datamodule.seq_len, datamodule.vocab_size
    conditions = datamodule.heldout_tokens(num_conditions, seed)
    reference = datamodule.heldout_tokens(REVERSE_SEQUENCES, seed + 1)
    common = {"benchmark": BENCHMARK, "dataset": dataset, "judge": "oracle", "seed": seed, "commit": git_commit(),
              "command": this_command()}
    rows = []
    for template in templates:
        known = known_positions(template, seq_len).expand(num_conditions, -1)
        rows.append({**common, "template": template, "source": "-", "method": "data", "steps": None,
                     **scored(language, conditions, known, reference, vocab_size)})
        print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
        given = Given(conditions, known.clone())
        for method, step_list, sampler, checkpoint in map(parse_model, models):
            for steps in step_list:
                samples = generate_samples(checkpoint, steps, 1, seed, batch_size, sampler=sampler,
                                           temperature=temperature, given=given)
                if not given.kept(samples.tokens):
                    raise RuntimeError(f"{checkpoint} changed a known token: conditional sampling is broken.")
                name = f"{dataset}_{template.replace(':', '-')}_{method}_{steps}.jsonl"
                write_jsonl(samples, Path(samples_dir) / name, overwrite=True)
                rows.append({**common, "template": template, "source": samples.meta["source"], "method": method,
                             "steps": steps, "sampler": samples.meta["sampler"], "sampling_temperature": temperature,
                             "seconds_per_sequence": samples.meta["seconds_per_sequence"], "checkpoint": checkpoint,
                             **scored(language, samples.tokens, known, reference, vocab_size)})
                print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
                for text in samples.texts[:2]:
                    print(f"  [{template}, {method}, {steps} steps] {text[:200]}")

    def key(row: dict) -> tuple:
        return (row["template"], row["method"], row["steps"], row.get("sampler"), row.get("sampling_temperature"),
                row["n_samples"])

    measured = {key(r) for r in rows}
    all_rows = replace_rows(BENCHMARK, rows, lambda r: key(r) in measured, dataset=dataset)
    write_report(all_rows)
    return all_rows


def write_report(rows: list[dict]) -> None:
    commands = list(dict.fromkeys((r["command"], r["commit"]) for r in rows))
    (results_io.RESULTS / f"{BENCHMARK}.md").write_text(
        f"# {BENCHMARK}\n\nGenerated from {BENCHMARK}.jsonl by benchmarks/conditional.py. cond_ppl: exp of the mean "
        "-log p(x_F | x_K) per filled token under the language itself (the data row: the held-out sequences' own "
        "completions); entropy: mean unigram entropy of a completion's filled tokens (nats); reverse_ppl: a bigram of "
        "the completions' transitions into filled positions scoring other held-out sequences'.\n\n"
        + markdown_table(rows, COLUMNS) + "\n\n## Commands\n\n"
        + "\n".join(f"- `{command}` (commit {commit})" for command, commit in commands) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset name in the rows: synthetic, synthetic-textlike")
    parser.add_argument("--config", required=True, help="a training config whose data is the synthetic language")
    parser.add_argument("--template", action="append", required=True, help="prefix:P or infill:A:B (repeatable)")
    parser.add_argument("--model", action="append", default=[], help="METHOD:STEPS[:SAMPLER]=CHECKPOINT (repeatable)")
    parser.add_argument("--num-conditions", type=int, default=256, help="held-out sequences completed per template")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out sequences and of the sampling")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of every model")
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per forward (default: all)")
    parser.add_argument("--samples-dir", default="runs/benchmarks/conditional_samples", help="where completions go")
    args = parser.parse_args()
    run(args.dataset, args.config, args.template, args.model, args.num_conditions, args.seed, args.batch_size,
        args.samples_dir, args.temperature)


if __name__ == "__main__":
    main()
