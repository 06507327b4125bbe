"""Generative quality versus sampling steps for any set of checkpoints, next to the data itself.

    python benchmarks/quality.py --dataset synthetic --config configs/synthetic_tiny.yaml --judges oracle \
        --model teacher:mask:1,8,1024=runs/synthetic_tiny_mask/checkpoints/last.ckpt \
        --model student-blind:mask:1,2,4,8,16=runs/synthetic_student_mask/checkpoints/last.ckpt

Each ``--model`` is METHOD:SOURCE:STEPS[:SAMPLER]=CHECKPOINT[@COMPASS:K:POLICY] (STEPS comma-separated; SAMPLER
one of the module's samplers, e.g. ``cached`` for MDLM or ``euler`` for SEDD; default its first; CHECKPOINT
``oracle`` samples a synthetic language with its exact posterior, the perfect factorised teacher; the optional
``@COMPASS:K:POLICY`` guides every sampling step, e.g. ``@oracle:16:importance``). For every model, step count,
sampling temperature and judge one row: generative perplexity, mean per-sample unigram entropy, sample count,
seed, seconds per sequence, what the sampler records beyond its name (FMLM: its stochasticity ``g``), and on synthetic
data the mode-coverage figures reverse_ppl and distinct_4.
Reference rows (method=data) score held-out data from the training config. Writes
benchmarks/results/<benchmark>.jsonl (this dataset's rows replaced), .md and .png (perplexity and entropy
versus steps, one panel per dataset and judge). Sample files go to --samples-dir.

Frontier mode (matched entropy): sweep sampling temperatures and interpolate each model's perplexity at the
data's entropy and at the 1024-step teacher's T = 1 entropy:

    python benchmarks/quality.py --benchmark frontier --frontier --temperatures 0.6,0.7,0.8,0.9,1.0 ...
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import results_io
from results_io import git_commit, markdown_table, replace_rows, this_command  # noqa: E402

from lightning_tsdfm.config_file import read_config  # noqa: E402
from lightning_tsdfm.data.decoding import decoder_from_card  # noqa: E402
from lightning_tsdfm.data.path_oracle import OracleDenoiser, PathOracle  # noqa: E402
from lightning_tsdfm.jumps import BlindJump  # noqa: E402
from lightning_tsdfm.metrics.diversity import distinct_ngrams, reverse_perplexity  # noqa: E402
from lightning_tsdfm.metrics.entropy import unigram_entropy  # noqa: E402
from lightning_tsdfm.metrics.evaluate import evaluate_samples  # noqa: E402
from lightning_tsdfm.metrics.frontier import SweepPoint, matched_perplexity  # noqa: E402
from lightning_tsdfm.metrics.judges import build_judge  # noqa: E402
from lightning_tsdfm.modules import read_checkpoint  # noqa: E402
from lightning_tsdfm.paths import MixturePath, make_source  # noqa: E402
from lightning_tsdfm.samples_io import SampleSet, generate_samples, write_jsonl  # noqa: E402
from lightning_tsdfm.sampling import denoiser_step, parse_step_sizes, sample_chain  # noqa: E402
from lightning_tsdfm.shaping.compasses import compass_kind  # noqa: E402
from lightning_tsdfm.shaping.settings import ShapingSettings  # noqa: E402

COLUMNS = ["dataset", "source", "method", "steps", "sampling_temperature", "judge", "gen_ppl", "nll_stderr", "entropy",
           "reverse_ppl", "distinct_4", "n_samples", "seed", "compass", "k", "policy", "trajectory", "g", "train_steps"]
FRONTIER_COLUMNS = ["dataset", "source", "method", "steps", "judge", "reference", "reference_entropy", "matched_gen_ppl",
                    "matched_nll_stderr", "matched_reverse_ppl", "bracket", "compass", "k", "policy", "trajectory", "g",
                    "train_steps"]
RATIO_COLUMNS = ["dataset", "source", "steps", "judge", "reference", "method", "compass", "k", "policy", "trajectory",
                 "train_steps",
                 "matched_gen_ppl", "ratio_to_blind", "log_ratio_stderr", "ratio_to_teacher_1024", "matched_reverse_ppl",
                 "blind_reverse_ppl"]
#: the checkpoint name that samples with the synthetic language's exact posterior (a perfect factorised teacher)
ORACLE_DENOISER = "oracle"


def datamodule_from_config(config: str):
    """The DataModule a training config describes (class_path + init_args, or a path to them), for held-out
    reference rows."""
    spec = read_config(config)["data"]
    module_name, _, class_name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**spec.get("init_args", {}))


def coverage(tokens: torch.Tensor, heldout: torch.Tensor | None, vocab_size: int) -> dict:
    """Mode-coverage figures of synthetic samples (reverse bigram perplexity on held-out data, distinct 4-grams)."""
    if heldout is None:
        return {}
    return {"reverse_ppl": reverse_perplexity(tokens, heldout, vocab_size), "distinct_4": distinct_ngrams(tokens, 4)}


@dataclass
class Reference:
    """What a quality run judges samples against: the data module and card, the judges, on a synthetic language
    held-out tokens (for the mode-coverage figures), and the data's own rows (method=data)."""

    datamodule: object
    card: dict
    judges: list
    heldout: torch.Tensor | None
    rows: list[dict] = field(default_factory=list)

    @classmethod
    def of(cls, config: str, judge_specs: list[str], num_samples: int, seed: int, common: dict) -> "Reference":
        datamodule = datamodule_from_config(config)
        datamodule.prepare_data()
        datamodule.setup("validate")
        card = datamodule.data_card()
        judges = [build_judge(spec, card) for spec in judge_specs]
        heldout = datamodule.heldout_tokens(2048, seed + 1) if card["kind"] == "synthetic" else None
        reference = cls(datamodule, card, judges, heldout)
        reference.rows = reference.data_rows(num_samples, seed, common)
        return reference

    def judged(self, tokens: torch.Tensor, texts: list[str], identity: dict) -> list[dict]:
        """One row per judge: ``identity``, the judge's perplexity and entropy, and the mode-coverage figures."""
        return [{**identity, **evaluate_samples(judge, tokens, texts),
                 **coverage(tokens, self.heldout, self.card["vocab_size"])} for judge in self.judges]

    def data_rows(self, n: int, seed: int, common: dict) -> list[dict]:
        """Reference rows (method=data): the judges' perplexity and the entropy of real held-out data."""
        tokens = self.datamodule.heldout_tokens(n, seed)
        identity = {**common, "source": "-", "method": "data", "steps": None}
        rows = []
        if self.card["kind"] == "synthetic":
            ppl, stderr = self.datamodule.language.true_perplexity(self.datamodule.seq_len, num_sequences=8192, seed=seed)
            rows.append({**identity, "judge": "oracle-exact", "gen_ppl": ppl,
                         "entropy": unigram_entropy(tokens).mean().item(), "n_samples": 8192, "nll_stderr": stderr})
        return rows + self.judged(tokens, decoder_from_card(self.card)(tokens), identity)


def training_provenance(checkpoint: str) -> dict:
    """Optimizer steps of the checkpoint, a student's trajectory target (heun, rk4, endpoint) and, for a shaped
    student, the shaping settings (k, policy, ...) and which compass shaped it (``learned`` or ``oracle``)."""
    if checkpoint == ORACLE_DENOISER:
        return {}
    state = read_checkpoint(checkpoint)
    shaping = next((v for k, v in state.get("callbacks", {}).items() if k.startswith("TrajectoryShaper")), None)
    if shaping:  # K is the table's column k (earlier checkpoints saved it under that name)
        shaping = {**{key: value for key, value in shaping.items() if key != "num_candidates"},
                   "k": shaping.get("num_candidates", shaping.get("k")), "compass_path": shaping.get("compass"),
                   **compass_labels(shaping.get("compass"))}
    trajectory = state.get("hyper_parameters", {}).get("trajectory")
    return {"train_steps": state.get("global_step"), "trajectory": trajectory, **(shaping or {})}


def compass_labels(name: str, kind: str | None = None) -> dict:
    """A row's names for the compass ``name``: ``compass`` (``oracle``, ``learned`` for a trained NCE compass as the
    stored rows have it, else the kind), ``compass_kind`` (nce, causal-lm, oracle, oracle-sequence) and the checkpoint;
    ``kind``: the kind already read from the loaded compass (default: read from ``name``)."""
    kind = kind or compass_kind(name)
    return {"compass": "learned" if kind == "nce" else kind, "compass_kind": kind, "compass_checkpoint": name}


def parse_model(spec: str) -> tuple[str, str, list[int], str, str | None, dict | None]:
    """METHOD:SOURCE:STEPS[:SAMPLER]=CHECKPOINT[@COMPASS:K:POLICY[:SHAPE_FROM][:NAME=VALUE...]] -> (method, source,
    [steps], checkpoint, sampler or None, sampling shaping or None); NAME=VALUE fields name any other setting of
    :class:`ShapingSettings`, e.g. ``filler_draws=8``."""
    try:
        name, checkpoint = spec.split("=", 1)
        method, source, steps, *sampler = name.split(":")
        if len(sampler) > 1:
            raise ValueError(name)
        checkpoint, shaping = split_guide(checkpoint)
        return method, source, [int(s) for s in steps.split(",")], checkpoint, (sampler[0] if sampler else None), shaping
    except ValueError as err:
        raise SystemExit(f"--model {spec!r}: expected "
                         "METHOD:SOURCE:STEPS[:SAMPLER]=CHECKPOINT[@COMPASS:K:POLICY[:SHAPE_FROM][:NAME=VALUE...]], "
                         "e.g. teacher:mask:8,1024=last.ckpt, mdlm:mask:1024:cached=mdlm.ckpt, "
                         "student:mask:8=last.ckpt@oracle:16:importance:0.5 or "
                         "student:mask:8=last.ckpt@ar:lm.ckpt:4:importance:filler_draws=8") from err


def sampling_labels(sampling_shaping: dict | None) -> dict:
    """What a guided row records of the shaping it sampled with (the settings and the compass's kind, as
    generate_samples' ``sampling_shaping`` has them): the settings, and the compass, k and policy columns; nothing for
    a blind model."""
    if not sampling_shaping:
        return {}
    return {"sampling_shaping": sampling_shaping, "k": sampling_shaping["num_candidates"],
            "policy": sampling_shaping["policy"],
            **compass_labels(sampling_shaping["compass"], sampling_shaping["compass_kind"])}


def split_guide(checkpoint: str) -> tuple[str, dict | None]:
    """CHECKPOINT[@COMPASS:K:POLICY[:SHAPE_FROM][:NAME=VALUE...]] -> (checkpoint, sampling shaping or None); raises
    ValueError on a malformed guide."""
    if "@" not in checkpoint:
        return checkpoint, None
    checkpoint, guide = checkpoint.rsplit("@", 1)
    named = {}
    while "=" in guide.rsplit(":", 1)[-1]:
        guide, setting = guide.rsplit(":", 1)
        key, value = setting.split("=", 1)
        named[key] = _setting_value(key, value)
    positional = guide.rsplit(":", 3)  # the compass path may hold colons; K is digits, a policy is not
    if len(positional) == 4 and not positional[2].isdigit():
        compass, k, policy, shape_from = positional
        shaping = {"compass": compass, "num_candidates": int(k), "policy": policy, "shape_from": float(shape_from)}
    else:
        compass, k, policy = guide.rsplit(":", 2)
        shaping = {"compass": compass, "num_candidates": int(k), "policy": policy}
    return checkpoint, shaping | named


def _setting_value(name: str, value: str):
    """A NAME=VALUE shaping setting as its field's type (int or float; unknown names are refused)."""
    types = {f.name: f.type for f in fields(ShapingSettings)}
    if name not in types or name in ("compass", "num_candidates", "policy"):
        raise ValueError(f"unknown shaping setting {name!r}")
    return int(value) if types[name] == "int" else float(value)


def oracle_samples(datamodule, source: str, steps: int, num_samples: int, seed: int, temperature: float,
                   step_sizes: list[float] | None = None) -> SampleSet:
    """``steps``-step samples drawn with the language's exact posterior p(x1 | x_t) (blind jumps), on the uniform
    grid or on ``step_sizes``."""
    path = MixturePath(make_source(source, datamodule.vocab_size))
    step = denoiser_step(OracleDenoiser(PathOracle(datamodule.language, path)), path, BlindJump(temperature=temperature))
    start = time.perf_counter()
    tokens = sample_chain(step, path.source.sample, num_samples, datamodule.seq_len, steps,
                          torch.Generator().manual_seed(seed), progress=True, description=f"oracle {steps} steps",
                          step_sizes=step_sizes)
    meta = {"source": source, "seconds_per_sequence": (time.perf_counter() - start) / num_samples, "dtype": "float64",
            "sampler": "ancestral"}
    return SampleSet(tokens, decoder_from_card(datamodule.data_card())(tokens), meta)


def frontier_rows(rows: list[dict], common: dict) -> list[dict]:
    """Matched-entropy rows: each (model, steps, judge) sweep interpolated at the data's entropy and at the T = 1
    entropy of the same source's 1024-step teacher (when measured)."""
    out = []
    sweeps: dict[tuple, list[dict]] = {}
    for r in rows:  # one sweep per model: shaped students apart by their compass
        if r["method"] != "data":
            sweeps.setdefault((r["method"], r.get("compass"), r["source"], r["steps"], r["judge"]), []).append(r)
    for (method, compass, source, steps, judge), sweep in sweeps.items():
        data = [r for r in rows if r["method"] == "data" and r["judge"] == judge]
        references = {"data": max(data, key=lambda r: r["n_samples"])["entropy"] if data else None}
        teacher = sweeps.get(("teacher", None, source, 1024, judge), [])
        references["teacher-1024"] = next((r["entropy"] for r in teacher if r.get("sampling_temperature", 1.0) == 1.0), None)
        points = [SweepPoint(r.get("sampling_temperature", 1.0), r["entropy"], r["gen_ppl"], r["nll_stderr"],
                             r.get("reverse_ppl")) for r in sweep]
        for reference, entropy in references.items():
            if entropy is None:
                continue
            matched = matched_perplexity(points, entropy)
            identity = {k: sweep[0].get(k) for k in ("compass", "k", "policy", "trajectory", "g", "train_steps",
                                                     "step_sizes", "checkpoint", "commit", "command")}  # the sweep's own
            row = {**common, "benchmark": "frontier", "source": source, "method": method, "steps": steps, "judge": judge,
                   "reference": reference, "reference_entropy": entropy, **identity,
                   "sampling_temperatures": sorted(p.temperature for p in points),
                   "matched_gen_ppl": matched.gen_ppl if matched else None,
                   "matched_nll_stderr": matched.nll_stderr if matched else None,
                   "matched_reverse_ppl": matched.reverse_ppl if matched else None,
                   "bracket": list(matched.temperatures) if matched else None,
                   "entropy_range": [min(p.entropy for p in points), max(p.entropy for p in points)]}
            out.append(row)
            if matched is None:
                print(f"  [{method}, {source}, {steps} steps, {judge}] entropy {entropy:.3f} ({reference}) lies outside "
                      f"the sweep's {row['entropy_range']}: widen --temperatures", flush=True)
    return out


def run(benchmark: str, dataset: str, config: str, models: list[str], judge_specs: list[str], num_samples: int,
        seed: int, batch_size: int | None, samples_dir: str, keep_other_models: bool = False,
        temperatures: tuple[float, ...] = (1.0,), frontier: bool = False,
        step_sizes: list[float] | None = None) -> list[dict]:
    common = {"benchmark": benchmark, "dataset": dataset, "seed": seed, "commit": git_commit(), "command": this_command()}
    grid = {"step_sizes": step_sizes} if step_sizes else {}
    ref = Reference.of(config, judge_specs, num_samples, seed, common)
    datamodule, rows = ref.datamodule, list(ref.rows)
    for method, source, step_list, checkpoint, sampler, shaping in map(parse_model, models):
        provenance = training_provenance(checkpoint)
        if shaping:  # a model guided while it samples: the row names the sampling compass
            provenance |= sampling_labels({**shaping, "compass_kind": compass_kind(shaping["compass"])})
        for steps in step_list:
            for temperature in temperatures:
                if checkpoint == ORACLE_DENOISER:
                    samples = oracle_samples(datamodule, source, steps, num_samples, seed, temperature, step_sizes)
                else:
                    samples = generate_samples(checkpoint, steps, num_samples, seed, batch_size, sampler=sampler,
                                               temperature=temperature, shaping=shaping, step_sizes=step_sizes)
                if samples.meta["source"] != source:
                    raise ValueError(f"{checkpoint} was trained with the {samples.meta['source']} source, not {source}.")
                suffix = "" if temperature == 1.0 else f"_T{temperature:g}"
                write_jsonl(samples, Path(samples_dir) / f"{dataset}_{source}_{method}_{steps}{suffix}.jsonl")
                for row in ref.judged(samples.tokens, samples.texts, {
                        **common, "source": source, "method": method, "steps": steps, "sampling_temperature": temperature,
                        "seconds_per_sequence": samples.meta["seconds_per_sequence"], "dtype": samples.meta["dtype"],
                        "sampler": samples.meta["sampler"], **samples.meta.get("sampler_settings", {}),
                        "checkpoint": checkpoint, **grid, **provenance}):
                    rows.append(row)
                    print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)
                if steps == max(step_list) and temperature == 1.0:
                    for text in samples.texts[:3]:
                        print(f"  [{method}, {source}, {steps} steps] {text[:300]}")

    def key(row: dict) -> tuple:  # data rows of another sample count stay: reverse_ppl depends on the count
        return (row["method"], row.get("compass"), row["source"], row["steps"], row["judge"],
                row.get("sampling_temperature"), row["n_samples"] if row["method"] == "data" else None)

    measured = {key(r) for r in rows}
    replaced = (lambda r: key(r) in measured) if keep_other_models else None
    all_rows = replace_rows(benchmark, rows, replaced, dataset=dataset)
    if frontier:  # matched rows from every sweep of this dataset, this run's and the stored ones
        sweeps = [r for r in all_rows if r["dataset"] == dataset and not r.get("reference")]
        all_rows = replace_rows(benchmark, frontier_rows(sweeps, common), lambda r: bool(r.get("reference")),
                                dataset=dataset)
    (write_frontier_report if frontier or holds_matched_rows(all_rows) else write_report)(benchmark, all_rows)
    return all_rows


def holds_matched_rows(rows: list[dict]) -> bool:
    """Whether ``rows`` are a frontier file's (matched-entropy rows beside the sweeps), also when a sweep was added to
    it without --frontier."""
    return any(r.get("reference") for r in rows)


def model_label(row: dict) -> str:
    """The method, and for a shaped model which compass shaped it (older rows hold the compass's path: learned)."""
    compass = row.get("compass")
    if compass and compass != "oracle":
        compass = "learned"
    return row["method"] + (f" ({compass} compass)" if compass else "")


def write_report(benchmark: str, rows: list[dict], plot: bool = True) -> None:
    """The table (``<benchmark>.md``) and, with ``plot``, perplexity and entropy against steps (``.png``)."""
    (results_io.RESULTS / f"{benchmark}.md").write_text(
        f"# {benchmark}\n\nGenerated from {benchmark}.jsonl by benchmarks/quality.py; commands are in the rows.\n\n"
        + markdown_table(rows, COLUMNS) + "\n"
    )
    if not plot:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = sorted({(r["dataset"], r["judge"]) for r in rows if r["method"] != "data"})
    fig, axes = plt.subplots(2, max(1, len(panels)), figsize=(4.8 * max(1, len(panels)), 7), squeeze=False)
    every_curve = sorted({(model_label(r), r["source"]) for r in rows if r["method"] != "data"})
    palette = plt.get_cmap("tab20")
    color = {curve: palette(i % palette.N) for i, curve in enumerate(every_curve)}  # one colour per curve in every panel
    for col, (dataset, judge) in enumerate(panels):
        ax_ppl, ax_ent = axes[0][col], axes[1][col]
        curves = sorted({(model_label(r), r["source"]) for r in rows if r["dataset"] == dataset and r["method"] != "data"})
        for method, source in curves:
            pts = sorted((r["steps"], r["gen_ppl"], r["entropy"]) for r in rows
                         if (r["dataset"], r["judge"], r["source"], model_label(r)) == (dataset, judge, source, method))
            style = "o-" if source == "mask" else "s--"
            for ax, column in ((ax_ppl, 1), (ax_ent, 2)):
                ax.plot([p[0] for p in pts], [p[column] for p in pts], style, color=color[(method, source)],
                        label=f"{method} ({source})")
        for r in rows:
            if r["dataset"] == dataset and r["method"] == "data" and r["judge"] == judge:
                ax_ppl.axhline(r["gen_ppl"], color="k", ls=":", label="data")
                ax_ent.axhline(r["entropy"], color="k", ls=":", label="data")
        ax_ppl.set(xscale="log", yscale="log", title=f"{dataset}, judge {judge}", ylabel="generative perplexity")
        ax_ent.set(xscale="log", xlabel="sampling steps", ylabel="unigram entropy (nats)")
        steps = sorted({r["steps"] for r in rows if r["dataset"] == dataset and r["steps"]})
        for ax in (ax_ppl, ax_ent):  # label the measured step counts, not log-scale minor ticks
            ax.set_xticks(steps, [str(s) for s in steps])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax_ppl.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(results_io.RESULTS / f"{benchmark}.png", dpi=110)
    print(f"wrote {results_io.RESULTS / benchmark}.jsonl, .md and .png")


def ratio_rows(matched: list[dict]) -> list[dict]:
    """Every matched model against the blind student at the same dataset, source, steps, judge and reference:
    the ratio of perplexities, the SE of its log (independent sample sets), and the ratio to the reference
    entropy's 1024-step teacher; reverse perplexities beside."""
    def where(row: dict) -> tuple:
        return row["dataset"], row["source"], row["steps"], row["judge"], row["reference"]

    blind = {where(r): r for r in matched if r["method"] == "student-blind" and r.get("matched_gen_ppl")}
    teacher = {(r["dataset"], r["source"], r["judge"], r["reference"]): r for r in matched
               if r["method"] == "teacher" and r["steps"] == 1024 and r.get("matched_gen_ppl")}
    out = []
    for r in matched:
        b = blind.get(where(r))
        if b is None or not r.get("matched_gen_ppl") or r is b:
            continue
        t = teacher.get((r["dataset"], r["source"], r["judge"], r["reference"]))
        ratio, stderr = matched_ratio(r, b)
        out.append({**{k: r.get(k) for k in ("dataset", "source", "steps", "judge", "reference", "method", "compass", "k",
                                             "policy", "trajectory", "train_steps", "matched_gen_ppl",
                                             "matched_reverse_ppl")},
                    "ratio_to_blind": ratio, "log_ratio_stderr": stderr,
                    "ratio_to_teacher_1024": matched_ratio(r, t)[0] if t else None,
                    "blind_reverse_ppl": b.get("matched_reverse_ppl")})
    return out


def matched_ratio(row: dict, baseline: dict, perplexity: str = "matched_gen_ppl") -> tuple[float, float]:
    """ppl_row / ppl_baseline at their matched entropy (the rows' ``perplexity`` field), and the SE of its log:
    sqrt(se_row^2 + se_baseline^2), the two sample sets being independent."""
    return (row[perplexity] / baseline[perplexity], math.hypot(row["matched_nll_stderr"], baseline["matched_nll_stderr"]))


def write_frontier_report(benchmark: str, rows: list[dict], plot: bool = True) -> None:
    """The matched-entropy table, the ratios to the blind student, the sweep rows, and (``plot``) perplexity against
    entropy per model."""
    matched = [r for r in rows if r.get("reference")]
    sweep = [r for r in rows if not r.get("reference")]
    (results_io.RESULTS / f"{benchmark}.md").write_text(
        f"# {benchmark}\n\nGenerated from {benchmark}.jsonl by benchmarks/quality.py --frontier; commands are in the "
        "rows. Generative perplexity log-interpolated between the two sampling temperatures whose entropies bracket "
        "the reference entropy (matched_nll_stderr: SE of the interpolated log perplexity).\n\n## Matched entropy\n\n"
        + markdown_table(matched, FRONTIER_COLUMNS)
        + "\n\n## Against the blind student at matched entropy\n\nratio_to_blind: matched perplexity over the blind "
        "student's at the same steps and reference entropy; log_ratio_stderr: SE of its log.\n\n"
        + markdown_table(ratio_rows(matched), RATIO_COLUMNS)
        + "\n\n## Temperature sweeps\n\n" + markdown_table(sweep, COLUMNS) + "\n"
    )
    if not plot:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["dataset"], r["judge"], r["source"]) for r in sweep if r["method"] != "data"})
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4.5), squeeze=False)
    palette = plt.get_cmap("tab20")
    curves = sorted({(model_label(r), r["steps"]) for r in sweep if r["method"] != "data"})
    color = {curve: palette(i % palette.N) for i, curve in enumerate(curves)}
    for ax, (dataset, judge, source) in zip(axes[0], panels):
        for method, steps in curves:
            pts = sorted((r["entropy"], r["gen_ppl"], r["sampling_temperature"]) for r in sweep
                         if (r["dataset"], r["judge"], r["source"], model_label(r), r["steps"]) == (dataset, judge, source, method, steps))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color[(method, steps)], ms=3,
                        label=f"{method} {steps} steps")
        for r in sweep:
            if r["dataset"] == dataset and r["method"] == "data" and r["judge"] == judge:
                ax.plot([r["entropy"]], [r["gen_ppl"]], "k*", ms=10, label="data")
        ax.set(yscale="log", xlabel="unigram entropy (nats)", ylabel="generative perplexity",
               title=f"{dataset}, {source} source, judge {judge}")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(results_io.RESULTS / f"{benchmark}.png", dpi=110)
    print(f"wrote {results_io.RESULTS / benchmark}.jsonl, .md and .png")


def main(default_benchmark: str = "quality") -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default=default_benchmark, help="name of the results file")
    parser.add_argument("--dataset", required=True, help="dataset name in the rows: synthetic, web-bible, ...")
    parser.add_argument("--config", required=True, help="the training config (its data section gives held-out data)")
    parser.add_argument("--model", action="append", required=True, help="METHOD:SOURCE:STEPS[:SAMPLER]=CHECKPOINT")
    parser.add_argument("--judges", nargs="+", default=["oracle"], help="oracle | smollm2 | ar:<ckpt> | hf:<model>")
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-dir", default="runs/benchmarks/samples", help="where the sample JSONL files go")
    parser.add_argument("--results-dir", default=str(results_io.RESULTS), help="where the .jsonl, .md and .png go")
    parser.add_argument("--temperatures", default="1.0",
                        help="comma-separated sampling temperatures, one row each (default 1.0)")
    parser.add_argument("--frontier", action="store_true",
                        help="also write matched-entropy rows: each sweep interpolated at the data's entropy and at "
                             "the 1024-step teacher's (T = 1) entropy; use with --temperatures and --benchmark frontier")
    parser.add_argument("--step-sizes", default=None, metavar="H1,...,HN",
                        help="sample every model on this non-uniform grid (one size per step, summing to 1, e.g. "
                             "1/64,1/64,1/32,1/16,1/8,1/4,1/4,1/4); each model's STEPS must be N")
    parser.add_argument("--keep-other-models", action="store_true",
                        help="replace only this dataset's rows of the (method, source, steps, judge) measured now "
                             "(default: all its rows)")
    args = parser.parse_args()
    results_io.RESULTS = Path(args.results_dir)
    temperatures = tuple(float(t) for t in args.temperatures.split(","))
    reference_only = temperatures == (1.0,) and all(parse_model(m)[2] == [1024] for m in args.model)
    if args.frontier and len(temperatures) < 2 and not reference_only:  # a 1024-step model at T = 1 is a reference
        parser.error("--frontier needs a sweep: pass at least two --temperatures, e.g. 0.6,0.7,0.8,0.9,1.0 (one, "
                     "T = 1.0, only for 1024-step models: their row is the reference entropy)")
    step_sizes = None
    if args.step_sizes:
        try:
            step_sizes = parse_step_sizes(args.step_sizes)
        except ValueError as err:
            parser.error(str(err))
        if any(parse_model(m)[2] != [len(step_sizes)] for m in args.model):
            parser.error(f"--step-sizes gives {len(step_sizes)} steps: every --model must sample {len(step_sizes)} steps")
    run(args.benchmark, args.dataset, args.config, args.model, args.judges, args.num_samples, args.seed,
        args.batch_size, args.samples_dir, args.keep_other_models, temperatures, args.frontier, step_sizes)


if __name__ == "__main__":
    main()
