"""conditional.png, drawn from the rows of conditional.jsonl alone (benchmarks/conditional.py draws it with its page).

One column per panel (dataset, template, judge, number of conditions). Above: each model's matched perplexity, its
sweep's perplexity log-interpolated at the reference entropy H*, with the band exp(log ppl +- se) of the SE se of the
interpolated log, against the reference model's (a horizontal line) and the held-out completions' own (dotted, at
their own entropy); under each model its value and, on a corpus, its matched MAUVE, with the MAUVE ceiling (the data
row's mauve_ceiling) in the legend. Below: each model's temperature sweep, perplexity against the filled tokens' entropy
(log y), H* a vertical line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path


def panel_key(row: dict) -> tuple:
    """(dataset, template, judge, n_samples): the panel a row is drawn in."""
    return row["dataset"], row["template"], row.get("judge"), row["n_samples"]


def label(row: dict) -> str:
    return f"{row['method']} {row['steps']}"


def log_band(perplexity: float, stderr: float) -> tuple[float, float]:
    """The distances below and above ``perplexity`` of exp(log ppl -+ stderr): the SE of the log as a band."""
    return perplexity * (1 - math.exp(-stderr)), perplexity * (math.exp(stderr) - 1)


def write_plot(rows: list[dict], path: Path, is_reference: Callable[[dict], bool], reference: str) -> None:
    """conditional.png at ``path``; ``is_reference``: whether a matched row is the ``reference`` model's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter

    matched = [r for r in rows if r.get("reference") and r.get("matched_cond_ppl")]
    sweeps = [r for r in rows if not r.get("reference") and r["method"] != "data"]
    data = {panel_key(r): r for r in rows if r["method"] == "data"}
    panels = list(dict.fromkeys(panel_key(r) for r in matched))
    palette = plt.get_cmap("tab10")
    color = {name: palette(i % palette.N) for i, name in enumerate(dict.fromkeys(label(r) for r in matched + sweeps))}
    fig, axes = plt.subplots(2, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 9.5), squeeze=False)
    for column, key in enumerate(panels):
        dataset, template, judge, count = key
        ax_matched, ax_sweep = axes[0][column], axes[1][column]
        models = [r for r in matched if panel_key(r) == key]
        entropy = models[0]["reference_entropy"]
        for x, row in enumerate(models):
            ppl = row["matched_cond_ppl"]
            ax_matched.errorbar([x], [ppl], yerr=[[v] for v in log_band(ppl, row["matched_nll_stderr"])], fmt="o",
                                color=color[label(row)], capsize=4)
            mauve = "" if row.get("matched_mauve") is None else f"\nMAUVE {row['matched_mauve']:.3f}"
            ax_matched.annotate(f"{ppl:.4g}{mauve}", (x, ppl), xytext=(0, -8), ha="center", va="top",
                                textcoords="offset points", fontsize=7)
            if is_reference(row):
                ax_matched.axhline(ppl, color=color[label(row)], lw=1, label=f"{reference}, the reference")
        floor = data.get(key)
        if floor is not None:
            ax_matched.axhline(floor["cond_ppl"], color="k", ls=":", lw=1,
                               label=f"held-out completions, at their own entropy {floor['entropy']:.3f}")
            if any(r.get("matched_mauve") is not None for r in models):
                ceiling = floor.get("mauve_ceiling")
                ax_matched.plot([], [], " ", label="MAUVE ceiling (held-out against other held-out): "
                                + ("not measured" if ceiling is None else f"{ceiling:.3f}"))
        ax_matched.set_xticks(range(len(models)), [label(r) for r in models], rotation=25, ha="right", fontsize=7)
        ax_matched.set(yscale="log", xlim=(-0.6, len(models) - 0.4),
                       ylabel=f"perplexity at H* = {entropy:.3f} nats (band: 1 SE of the log)")
        ax_matched.set_title(f"{dataset}, {template}: judge {judge}, {count} conditions\n"
                             f"conditional perplexity matched at the {reference} entropy H*", fontsize=9)
        ax_matched.legend(fontsize=7, loc="lower right")
        for name in dict.fromkeys(label(r) for r in sweeps if panel_key(r) == key):
            points = sorted((r["entropy"], r["cond_ppl"]) for r in sweeps if panel_key(r) == key and label(r) == name)
            ax_sweep.plot([p[0] for p in points], [p[1] for p in points], "o-" if len(points) > 1 else "D",
                          ms=3 if len(points) > 1 else 6, color=color[name], label=name)
        if floor is not None:
            ax_sweep.plot([floor["entropy"]], [floor["cond_ppl"]], "k*", ms=9, label="held-out completions")
        ax_sweep.axvline(entropy, color="grey", ls="--", lw=1, label=f"H*: {reference} T = 1 entropy")
        ax_sweep.set(yscale="log", xlabel="filled tokens' unigram entropy (nats)", ylabel="conditional perplexity")
        ax_sweep.set_title(f"{dataset}, {template}: judge {judge}, {count} conditions\n"
                           "temperature sweeps", fontsize=9)
        ax_sweep.legend(fontsize=7)
        for ax in (ax_matched, ax_sweep):  # plain numbers on the log axes
            ax.yaxis.set_major_formatter(LogFormatter())
            ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 0.5)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
