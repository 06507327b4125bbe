"""Conditional quality: held-out sequences with positions hidden, completed by each model; on a synthetic language the
completions are scored exactly by the language (the oracle given what was known), on a text corpus by a causal LM
judge given the prompt, with MAUVE against the held-out continuations.

    python benchmarks/conditional.py --dataset synthetic-textlike --config configs/textlike_teacher.yaml \
        --template prefix:64 --template infill:32:96 --num-conditions 256 --seed 0 --temperatures 0.6,0.8,1.0 \
        --model teacher:1024:first_hitting=runs/textlike_teacher_mask/checkpoints/last.ckpt \
        --model student-blind:8=runs/textlike_student_mask/checkpoints/last.ckpt \
        --model student-guided:8=runs/textlike_student_mask/checkpoints/last.ckpt@oracle:16:importance

Each ``--template`` says which positions are known: ``prefix:P`` (the first P; the rest is continued) or
``infill:A:B`` (every position but A .. B-1, which are filled). Each ``--model`` is
METHOD:STEPS[:SAMPLER]=CHECKPOINT[@COMPASS:K:POLICY[:SHAPE_FROM][:NAME=VALUE...]] (STEPS comma-separated; SAMPLER one
of the checkpoint's samplers, default its first; the optional guide, as benchmarks/quality.py reads it, steers every
sampling step by the compass, e.g. ``@oracle:16:importance``). For every template the same ``--num-conditions``
held-out sequences give the known tokens, and every model completes each of them once at each of ``--temperatures``.
One row per template, model, step count and temperature: the conditional perplexity of the filled positions,
log p(x_F | x_K) by the forward algorithm (:mod:`lightning_tsdfm.metrics.conditional`), with its standard error, its
reverse perplexity on other held-out sequences, the mean entropy of the filled tokens, the sampling shaping of a
guided model, the sample count, seed, command and commit. A data row (method=data) scores the held-out sequences' own
completions: the language's conditional entropy, the floor a perfect completer reaches at its entropy.

On a text corpus (a config whose data is a TextDataModule, e.g. the embedded World English Bible):

    python benchmarks/conditional.py --dataset web-bible --config configs/demo_text_teacher.yaml --judges smollm2 \
        --template prefix:32 --num-conditions 128 --seed 0 --temperatures 0.6,0.7,0.8,0.9,1.0 \
        --model student-blind:8:ancestral=runs/demo/student_blind/checkpoints/last.ckpt

the conditions are blocks of the corpus's validation split, only ``prefix:P`` templates apply (the judge reads a
continuation after its prompt), and each row holds, per judge, the judge's perplexity of the continuation given the
prompt (only the continuation's tokens count), MAUVE between the continuations and the held-out ones from the
judge's features, and the continuations' entropy; the data row is the held-out continuations' own perplexity, the
floor, and MAUVE's noise ceiling, MAUVE between the held-out continuations and as many real continuations of other
held-out blocks (benchmarks/corpus_continuations.py).

Matched entropy: generative perplexity rewards low entropy, so each (template, model, steps) sweep is also read at the
reference entropy H*, the filled-token entropy of the 1024-step teacher's T = 1 row of the template
(``reference: teacher-1024``). Between the two temperatures whose entropies bracket H*, log perplexity is
interpolated linearly in entropy (:func:`lightning_tsdfm.metrics.frontier.matched_perplexity`, with the SE of the
interpolated log; MAUVE, where measured, linearly in entropy with the same weight); a sweep that does not bracket
H* gets no matched row (never extrapolated). Each matched row holds
its ratio to the blind student's matched perplexity at the same template and steps and to the 1024-step teacher's,
each with the SE of the log ratio, sqrt(se_a^2 + se_b^2) (independent sample sets).

Writes benchmarks/results/conditional.jsonl (the rows of the models, templates, steps and temperatures measured
replaced; every matched row of the dataset recomputed from the stored sweeps), conditional.md and conditional.png
(benchmarks/conditional_plot.py); the completions go to --samples-dir.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from corpus_continuations import CorpusScoring, other_blocks  # noqa: E402
from quality import (  # noqa: E402
    datamodule_from_config,
    matched_ratio,
    sampling_labels,
    split_guide,
    training_provenance,
)
from results_io import git_commit, markdown_table, replace_rows, this_command  # noqa: E402

from lightning_tsdfm.conditioning import Given  # noqa: E402
from lightning_tsdfm.metrics.conditional import (  # noqa: E402
    conditional_perplexity,
    conditional_reverse_perplexity,
    filled_entropy,
)
from lightning_tsdfm.metrics.frontier import MatchedPerplexity, SweepPoint, matched_perplexity  # noqa: E402
from lightning_tsdfm.samples_io import generate_samples, write_jsonl  # noqa: E402

BENCHMARK = "conditional"
COLUMNS = ["dataset", "template", "known_tokens", "filled_tokens", "source", "method", "steps", "sampler",
           "sampling_temperature", "compass", "k", "policy", "judge", "cond_ppl", "nll_stderr", "entropy",
           "reverse_ppl", "mauve", "mauve_ceiling", "n_samples", "seed", "commit"]
MATCHED_COLUMNS = ["dataset", "template", "method", "steps", "compass", "k", "policy", "judge", "reference",
                   "reference_entropy", "matched_cond_ppl", "matched_nll_stderr", "ratio_to_blind",
                   "log_ratio_to_blind_stderr", "ratio_to_teacher_1024", "log_ratio_to_teacher_stderr",
                   "matched_reverse_ppl", "matched_mauve", "mauve_ceiling", "bracket"]
#: the judge of a synthetic language: the language itself
ORACLE = "oracle"
#: held-out sequences the reverse perplexity scores (other than the conditions)
REVERSE_SEQUENCES = 2048
#: the matched rows' reference: the filled-token entropy of this model's T = 1 row of the same template
REFERENCE = "teacher-1024"
REFERENCE_METHOD, REFERENCE_STEPS, REFERENCE_TEMPERATURE = "teacher", 1024, 1.0
#: the model every matched row is divided by (at the same template and steps)
BLIND = "student-blind"


def is_reference_model(row: dict) -> bool:
    """Whether ``row`` is the reference model's: the unguided 1024-step teacher."""
    return (row["method"], row["steps"], row.get("compass")) == (REFERENCE_METHOD, REFERENCE_STEPS, None)


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


def parse_model(spec: str) -> tuple[str, list[int], str | None, str, dict | None]:
    """METHOD:STEPS[:SAMPLER]=CHECKPOINT[@COMPASS:K:POLICY[:SHAPE_FROM][:NAME=VALUE...]] -> (method, [steps], sampler
    or None, checkpoint, sampling shaping or None)."""
    try:
        name, checkpoint = spec.split("=", 1)
        method, steps, *sampler = name.split(":")
        if len(sampler) > 1:
            raise ValueError(name)
        checkpoint, shaping = split_guide(checkpoint)
        return method, [int(s) for s in steps.split(",")], (sampler[0] if sampler else None), checkpoint, shaping
    except ValueError:
        raise SystemExit(f"--model {spec!r}: expected METHOD:STEPS[:SAMPLER]=CHECKPOINT[@COMPASS:K:POLICY[:SHAPE_FROM]"
                         f"[:NAME=VALUE...]], e.g. teacher:1024:first_hitting=last.ckpt, student-blind:4,8=last.ckpt "
                         f"or student-guided:8=last.ckpt@oracle:16:importance:0.0:filler_draws=1") from None


def parse_temperatures(text: str) -> list[float]:
    """``0.6,0.8,1.0`` -> [0.6, 0.8, 1.0], each > 0."""
    try:
        temperatures = [float(t) for t in text.split(",")]
    except ValueError:
        temperatures = []
    if not temperatures or not all(t > 0 for t in temperatures) or len(set(temperatures)) != len(temperatures):
        raise SystemExit(f"--temperatures {text!r}: expected distinct comma-separated temperatures > 0, e.g. "
                         "0.6,0.7,0.8,0.9,1.0 (1.0: the model's own distribution).")
    return temperatures


def scored(language, tokens: torch.Tensor, known: torch.Tensor, reference: torch.Tensor, vocab_size: int) -> dict:
    """The conditional figures of completions ``tokens`` [N, L] whose ``known`` [N, L] positions were given."""
    reference_known = known[:1].expand(len(reference), -1)
    return {**conditional_perplexity(language, tokens, known),
            "entropy": filled_entropy(tokens, known).mean().item(),
            "reverse_ppl": conditional_reverse_perplexity(tokens, known, reference, reference_known, vocab_size),
            "known_tokens": int(known[0].sum()), "filled_tokens": int((~known[0]).sum()), "n_samples": len(tokens)}


class OracleScoring:
    """A synthetic language's exact scoring of the completions of one template (judge ``oracle``): :func:`scored`
    against ``reference`` held-out sequences."""

    def __init__(self, datamodule, conditions: torch.Tensor, known: torch.Tensor, reference: torch.Tensor) -> None:
        self.language, self.vocab_size = datamodule.language, datamodule.vocab_size
        self.conditions, self.known, self.reference = conditions, known, reference

    def data_rows(self) -> list[dict]:
        return self.rows(self.conditions)

    def rows(self, tokens: torch.Tensor) -> list[dict]:
        return [{"judge": ORACLE, **scored(self.language, tokens, self.known, self.reference, self.vocab_size)}]


def check_judges(card: dict, config: str, judges: list[str]) -> None:
    """A synthetic language is judged by its oracle alone; a text corpus by text judges (smollm2, ar:, hf:)."""
    if card["kind"] == "synthetic" and judges != [ORACLE]:
        raise SystemExit(f"{config} describes a synthetic language, which scores completions exactly: pass --judges "
                         f"{ORACLE} (the default), not {' '.join(judges)}.")
    if card["kind"] == "text" and (not judges or ORACLE in judges):
        raise SystemExit(f"{config} describes a text corpus: judge its continuations with --judges smollm2 (or "
                         "ar:<checkpoint>, hf:<model>); the oracle scores a synthetic language only.")
    if card["kind"] not in ("synthetic", "text"):
        raise SystemExit(f"{config} describes {card['kind']} data: conditional.py reads a synthetic language or a "
                         "text corpus.")


def held_out(datamodule, count: int, seed: int, config: str) -> torch.Tensor:
    """``count`` held-out sequences of the data of ``config`` (a text corpus's: blocks of its validation split)."""
    try:
        return datamodule.heldout_tokens(count, seed)
    except ValueError as err:
        raise SystemExit(f"{config}: {err} (pass a smaller --num-conditions)") from None


def same_data(card: dict, sample_card: dict, checkpoint: str, config: str) -> None:
    """A text model's samples must be of the corpus and tokenizer the conditions come from."""
    differ = [k for k in ("kind", "corpus", "vocab_size", "seq_len") if sample_card.get(k) != card.get(k)]
    if differ:
        raise SystemExit(f"{checkpoint} was trained on other data than {config} describes (its {', '.join(differ)} "
                         "differ): condition it on held-out text of its own corpus and tokenizer.")


def run(dataset: str, config: str, templates: list[str], models: list[str], num_conditions: int, seed: int,
        batch_size: int | None, samples_dir: str, temperatures: Sequence[float] = (1.0,),
        judges: Sequence[str] = (ORACLE,)) -> list[dict]:
    datamodule = datamodule_from_config(config)
    card = datamodule.data_card()
    check_judges(card, config, list(judges))
    seq_len = datamodule.seq_len
    conditions = held_out(datamodule, num_conditions, seed, config)
    reference = held_out(datamodule, REVERSE_SEQUENCES, seed + 1, config) if card["kind"] == "synthetic" else None
    others = other_blocks(datamodule, conditions, seed) if card["kind"] == "text" else None
    if card["kind"] == "text" and others is None:
        print(f"{config}: the validation split holds fewer than {2 * num_conditions} blocks: no MAUVE ceiling (pass a "
              "smaller --num-conditions for one)", flush=True)
    common = {"benchmark": BENCHMARK, "dataset": dataset, "seed": seed, "commit": git_commit(),
              "command": this_command()}
    parsed = [parse_model(model) for model in models]
    provenance = {checkpoint: training_provenance(checkpoint) for _, _, _, checkpoint, _ in parsed}
    rows, built_judges = [], None
    for template in templates:
        known = known_positions(template, seq_len).expand(num_conditions, -1)
        if card["kind"] == "synthetic":
            scoring = OracleScoring(datamodule, conditions, known, reference)
        else:
            scoring = CorpusScoring.of(card, list(judges), conditions, known, template, seed, built_judges, others)
            built_judges = scoring.judges
        for figures in scoring.data_rows():
            rows.append({**common, "template": template, "source": "-", "method": "data", "steps": None, **figures})
            print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
        given = Given(conditions, known.clone())
        for method, step_list, sampler, checkpoint, shaping in parsed:
            for steps in step_list:
                for temperature in temperatures:
                    samples = generate_samples(checkpoint, steps, 1, seed, batch_size, sampler=sampler,
                                               temperature=temperature, shaping=shaping, given=given)
                    if not given.kept(samples.tokens):
                        raise RuntimeError(f"{checkpoint} changed a known token: conditional sampling is broken.")
                    if card["kind"] == "text":
                        same_data(card, samples.meta["data"], checkpoint, config)
                    suffix = "" if temperature == 1.0 else f"_T{temperature:g}"
                    name = f"{dataset}_{template.replace(':', '-')}_{method}_{steps}{suffix}.jsonl"
                    write_jsonl(samples, Path(samples_dir) / name, overwrite=True)
                    for figures in scoring.rows(samples.tokens):
                        rows.append({**common, "template": template, "source": samples.meta["source"],
                                     "method": method, "steps": steps, "sampler": samples.meta["sampler"],
                                     "sampling_temperature": temperature,
                                     "seconds_per_sequence": samples.meta["seconds_per_sequence"],
                                     "checkpoint": checkpoint, **provenance[checkpoint],
                                     **sampling_labels(samples.meta["sampling_shaping"]), **figures})
                        print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
                    for text in samples.texts[:2] if temperature == 1.0 else []:
                        print(f"  [{template}, {method}, {steps} steps] {text[:200]}")

    def key(row: dict) -> tuple:
        return (row["template"], row["method"], row["steps"], row.get("sampler"), row.get("sampling_temperature"),
                row["n_samples"], row.get("judge"))

    measured = {key(r) for r in rows}
    all_rows = replace_rows(BENCHMARK, rows, lambda r: key(r) in measured, dataset=dataset)
    stored_sweeps = [r for r in all_rows if r["dataset"] == dataset and not r.get("reference")]
    all_rows = replace_rows(BENCHMARK, matched_rows(stored_sweeps), lambda r: bool(r.get("reference")),
                            dataset=dataset)
    write_report(all_rows)
    return all_rows


def sweep_key(row: dict) -> tuple:
    """(dataset, template, method, compass, steps, sampler, n_samples, judge): the sweep ``row`` belongs to."""
    return (row["dataset"], row["template"], row["method"], row.get("compass"), row["steps"], row.get("sampler"),
            row["n_samples"], row.get("judge"))


def sweeps(rows: list[dict]) -> dict[tuple, list[dict]]:
    """The per-temperature rows of each model (not data, not matched rows) by :func:`sweep_key`."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["method"] != "data" and not r.get("reference"):
            key = sweep_key(r)
            out.setdefault(key, []).append(r)
    return out


def reference_entropy(rows: list[dict], dataset: str, template: str) -> float | None:
    """The filled-token entropy of the 1024-step teacher's (unguided) T = 1 row of ``template``, the one of most
    samples; None when it was not measured (every judge's row of one set of completions has the same entropy)."""
    candidates = [r for r in rows if (r["dataset"], r["template"], r["method"], r["steps"], r.get("compass"),
                                      r.get("sampling_temperature"), bool(r.get("reference")))
                  == (dataset, template, REFERENCE_METHOD, REFERENCE_STEPS, None, REFERENCE_TEMPERATURE, False)]
    return max(candidates, key=lambda r: r["n_samples"])["entropy"] if candidates else None


def match(sweep: list[dict], entropy: float) -> MatchedPerplexity | None:
    """The sweep's conditional perplexity log-interpolated at ``entropy``; None when no two rows bracket it."""
    return matched_perplexity([SweepPoint(r["sampling_temperature"], r["entropy"], r["cond_ppl"], r["nll_stderr"],
                                          r.get("reverse_ppl")) for r in sweep], entropy)


def matched_mauve(sweep: list[dict], entropy: float, bracket: tuple[float, float]) -> float | None:
    """MAUVE at ``entropy``, linear in entropy between the sweep's rows at the ``bracket`` temperatures with the
    weight of the perplexity's interpolation, w = (H* - H_a) / (H_b - H_a); None when either has no MAUVE."""
    a, b = (next(r for r in sweep if r["sampling_temperature"] == t) for t in bracket)
    if a.get("mauve") is None or b.get("mauve") is None:
        return None
    w = 0.0 if b["entropy"] == a["entropy"] else (entropy - a["entropy"]) / (b["entropy"] - a["entropy"])
    return (1 - w) * a["mauve"] + w * b["mauve"]


def matched_rows(rows: list[dict]) -> list[dict]:
    """One matched row per sweep of ``rows`` that brackets its template's reference entropy: the interpolated
    conditional perplexity and the SE of its log (and MAUVE, :func:`matched_mauve`), and the ratios to the blind
    student (same template, steps and judge) and to the 1024-step teacher (same template and judge) with the SE of
    each log ratio. The identity (checkpoint, shaping, commit, command) is the sweep's own."""
    out = []
    for (dataset, template, *_), sweep in sweeps(rows).items():
        entropy = reference_entropy(rows, dataset, template)
        matched = match(sweep, entropy) if entropy is not None else None
        if matched is None:
            continue
        last = sweep[-1]
        identity = {k: last[k] for k in (
            "benchmark", "dataset", "judge", "template", "known_tokens", "filled_tokens", "source", "method", "steps",
            "sampler", "checkpoint", "compass", "compass_kind", "compass_checkpoint", "k", "policy", "sampling_shaping",
            "trajectory", "train_steps", "n_samples", "seed", "commit", "command") if k in last}
        out.append({**identity, "reference": REFERENCE, "reference_entropy": entropy,
                    "sampling_temperatures": sorted(r["sampling_temperature"] for r in sweep),
                    "bracket": list(matched.temperatures),
                    "entropy_range": [min(r["entropy"] for r in sweep), max(r["entropy"] for r in sweep)],
                    "matched_cond_ppl": matched.gen_ppl, "matched_nll_stderr": matched.nll_stderr,
                    "matched_reverse_ppl": matched.reverse_ppl,
                    "matched_mauve": matched_mauve(sweep, entropy, matched.temperatures)})
    return with_ratios(out)


def with_ratios(matched: list[dict]) -> list[dict]:
    """``matched`` with ratio_to_blind and ratio_to_teacher_1024 (None for the baseline itself or when it has no
    matched row) and the SE of each log ratio (:func:`quality.matched_ratio`)."""
    def where(row: dict) -> tuple:
        return row["dataset"], row["template"], row["n_samples"], row.get("judge")

    blind = {(*where(r), r["steps"]): r for r in matched if r["method"] == BLIND and not r.get("compass")}
    teacher = {where(r): r for r in matched if is_reference_model(r)}
    out = []
    for r in matched:
        ratios = {}
        for column, stderr_column, baseline in (
                ("ratio_to_blind", "log_ratio_to_blind_stderr", blind.get((*where(r), r["steps"]))),
                ("ratio_to_teacher_1024", "log_ratio_to_teacher_stderr", teacher.get(where(r)))):
            own = baseline is None or baseline is r
            ratio, stderr = (None, None) if own else matched_ratio(r, baseline, "matched_cond_ppl")
            ratios |= {column: ratio, stderr_column: stderr}
        out.append({**r, **ratios})
    return out


def unmatched_lines(rows: list[dict]) -> list[dict]:
    """A table line for each sweep with no stored matched row, saying why (no reference row, or a reference entropy
    outside the sweep's entropies: not extrapolated)."""
    stored = {sweep_key(r) for r in rows if r.get("reference")}
    lines = []
    for key, sweep in sweeps(rows).items():
        if key in stored:
            continue
        dataset, template = key[0], key[1]
        entropy = reference_entropy(rows, dataset, template)
        low, high = min(r["entropy"] for r in sweep), max(r["entropy"] for r in sweep)
        if entropy is None:
            why = f"no {REFERENCE} T = 1 row of {template}: not matched"
        elif match(sweep, entropy) is None:
            why = f"entropy {entropy:.3f} outside the sweep's {low:.3f} .. {high:.3f}: not extrapolated"
        else:
            why = "not interpolated yet: measure the sweep again with conditional.py"
        lines.append({**{k: sweep[-1].get(k) for k in ("dataset", "template", "method", "steps", "compass", "k",
                                                        "policy", "judge")},
                      "reference": REFERENCE, "reference_entropy": entropy, "bracket": why})
    return lines


def with_ceilings(matched: list[dict], rows: list[dict]) -> list[dict]:
    """``matched`` rows each with the MAUVE ceiling of its dataset, template, judge and sample count (the data row's
    mauve_ceiling), where one was measured."""
    ceilings = {(r["dataset"], r["template"], r.get("judge"), r["n_samples"]): r.get("mauve_ceiling")
                for r in rows if r["method"] == "data"}
    return [{**r, "mauve_ceiling": ceilings.get((r["dataset"], r["template"], r.get("judge"), r.get("n_samples")))}
            for r in matched]


def write_report(rows: list[dict], plot: bool = True) -> None:
    """conditional.md: the plot shown, the per-temperature rows, then the matched rows (and each sweep that has none,
    with why); with ``plot``, conditional.png (:func:`conditional_plot.write_plot`)."""
    sweep_rows = [r for r in rows if not r.get("reference")]
    matched = with_ceilings([r for r in rows if r.get("reference")], rows) + unmatched_lines(rows)
    commands = list(dict.fromkeys((r["command"], r["commit"]) for r in rows))
    (results_io.RESULTS / f"{BENCHMARK}.md").write_text(
        f"# {BENCHMARK}\n\nGenerated from {BENCHMARK}.jsonl by benchmarks/conditional.py. cond_ppl: on a synthetic "
        "language (judge oracle) exp of the mean -log p(x_F | x_K) per filled token under the language itself; on a "
        "text corpus exp of the mean -log p(continuation | prompt) per judge token of the continuation under the "
        "judge (the data row: the held-out sequences' own completions); entropy: mean unigram entropy of a "
        "completion's filled tokens (nats); reverse_ppl (synthetic): a bigram of the completions' transitions into "
        "filled positions scoring other held-out sequences'; mauve (text): MAUVE between the continuations and the "
        "held-out ones, from the judge's mean last hidden state over a continuation's tokens; mauve_ceiling (text, the "
        "data row): MAUVE between the held-out continuations and as many real continuations of other held-out blocks "
        "(same prompt length, judge and quantisation), what a continuer indistinguishable from the data scores at this "
        "count; compass, k, policy: the energy that guided the sampling, or that shaped the student's distillation."
        f"\n\n![Matched perplexity and temperature sweeps per template]({BENCHMARK}.png)\n\n"
        f"{BENCHMARK}.png: above, each model's matched cond_ppl with the band exp(log ppl +- matched_nll_stderr), the "
        f"{REFERENCE} row a solid line, the data row dotted (at its own entropy), matched MAUVE under each model and "
        "the MAUVE ceiling in the legend; below, each sweep's cond_ppl against entropy, the reference entropy dashed."
        "\n\n## Per temperature\n\n" + markdown_table(sweep_rows, COLUMNS)
        + "\n\n## Matched entropy\n\nEach sweep's cond_ppl log-interpolated in entropy between the two temperatures "
        f"(bracket) whose entropies bracket the reference entropy, the filled-token entropy of the {REFERENCE} T = 1 "
        "row of the same template; matched_nll_stderr: SE of the interpolated log; matched_mauve: MAUVE interpolated "
        "linearly with the same weight. ratio_to_blind: over the blind student's matched cond_ppl at the same "
        "template, steps and judge; ratio_to_teacher_1024: over the 1024-step "
        "teacher's; log_ratio_*_stderr: SE of the log ratio, sqrt(se_a^2 + se_b^2); mauve_ceiling: the data row's, "
        "the most matched_mauve can be expected to reach. A sweep that does not bracket the "
        "reference has no matched row (bracket says why).\n\n" + markdown_table(matched, MATCHED_COLUMNS)
        + "\n\n## Commands\n\n"
        + "\n".join(f"- `{command}` (commit {commit})" for command, commit in commands) + "\n")
    if plot:
        import conditional_plot

        conditional_plot.write_plot(rows, results_io.RESULTS / f"{BENCHMARK}.png", is_reference_model, REFERENCE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True,
                        help="dataset name in the rows: synthetic, synthetic-textlike, web-bible")
    parser.add_argument("--config", required=True,
                        help="a training config whose data is a synthetic language or a text corpus")
    parser.add_argument("--template", action="append", required=True,
                        help="prefix:P or infill:A:B (repeatable; a text corpus: prefix:P)")
    parser.add_argument("--judges", nargs="+", default=[ORACLE],
                        help="oracle (a synthetic language, the default) | smollm2 | ar:<ckpt> | hf:<model> (a text "
                             "corpus; one row each)")
    parser.add_argument("--model", action="append", default=[],
                        help="METHOD:STEPS[:SAMPLER]=CHECKPOINT[@COMPASS:K:POLICY[:SHAPE_FROM][:NAME=VALUE...]] "
                             "(repeatable)")
    parser.add_argument("--num-conditions", type=int, default=256, help="held-out sequences completed per template")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out sequences and of the sampling")
    parser.add_argument("--temperatures", default="1.0",
                        help="comma-separated sampling temperatures of every model, one row each (default 1.0); "
                             "a sweep, e.g. 0.6,0.7,0.8,0.9,1.0, gives the matched-entropy rows")
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per forward (default: all)")
    parser.add_argument("--samples-dir", default="runs/benchmarks/conditional_samples", help="where completions go")
    args = parser.parse_args()
    run(args.dataset, args.config, args.template, args.model, args.num_conditions, args.seed, args.batch_size,
        args.samples_dir, parse_temperatures(args.temperatures), args.judges)


if __name__ == "__main__":
    main()
