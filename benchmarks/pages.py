"""The pages of benchmarks/results, each generated from rows only: every table (``<page>.md``), its plot, and the index
``README.md`` that lists them and the archive.

A page reads one rows file, ``<rows>.jsonl`` (levers.md reads frontier.jsonl); cost_quality.md also reads the sizes
its rows' checkpoints were recorded with (checkpoint_sizes.py), and glance.md is written when cost_quality.jsonl
exists, from the rows of every benchmark the claims of benchmarks/glance.yaml name. Generating twice gives the same
bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import results_io
from archive import ARCHIVE
from results_io import markdown_table, read_rows

INDEX = "README.md"


@dataclass(frozen=True)
class Page:
    """``<name>.md`` (and ``<name>.png`` when it has a plot), written by ``write(rows, plot)`` from ``<rows>.jsonl``."""

    name: str
    rows: str
    about: str
    has_plot: bool
    write: Callable[[list[dict], bool], None]


def _quality(benchmark: str) -> Callable[[list[dict], bool], None]:
    def write(rows: list[dict], plot: bool) -> None:
        import quality

        writer = quality.write_frontier_report if quality.holds_matched_rows(rows) else quality.write_report
        writer(benchmark, rows, plot)

    return write


def _cost_quality(rows: list[dict], plot: bool) -> None:
    import cost_quality

    cost_quality.write_report(cost_quality.cost_rows(rows), plot)


def _glance(rows: list[dict], plot: bool) -> None:
    import glance

    glance.write_page()


def _levers(rows: list[dict], plot: bool) -> None:
    import levers

    levers.write_page(rows)


def _compasses(rows: list[dict], plot: bool) -> None:
    import compasses

    compasses.write_report(rows)


def _conditional(rows: list[dict], plot: bool) -> None:
    import conditional

    conditional.write_report(rows, plot)


def _diagnostics(rows: list[dict], plot: bool) -> None:
    import diagnostics

    methods = [r["method"] for r in rows if r["method"] != "data"]
    diagnostics.write_report(rows, "student-blind" if "student-blind" in methods else methods[0], plot)


def _table(module: str) -> Callable[[list[dict], bool], None]:
    def write(rows: list[dict], plot: bool) -> None:
        __import__(module).write_page(rows)

    return write


PAGES = [
    Page("baselines", "baselines", "MDLM, SEDD, SDTT, FLM and FMLM beside our teachers and students", True,
         _quality("baselines")),
    Page("compasses", "compasses", "the compass instrument: how each energy ranks a jump's K candidates against the "
         "state oracle", False, _compasses),
    Page("conditional", "conditional", "prefix and infill completions of the text-like language, scored exactly, and "
         "prefix continuations of the corpus, judged by SmolLM2 with MAUVE, at matched entropy", True, _conditional),
    Page("cost_quality", "cost_quality", "perplexity at matched entropy against seconds per sequence and "
         "forward-equivalents", True, _cost_quality),
    Page("diagnostics", "diagnostics", "student quality against training steps", True, _diagnostics),
    Page("frontier", "frontier", "matched-entropy perplexity of temperature sweeps, and each model against the blind "
         "student", True, _quality("frontier")),
    Page("glance", "cost_quality", "the claims of the repository's README at a glance: each against the blind student "
         "and the 1024-step teacher at matched entropy", False, _glance),
    Page("gpu_check", "gpu_check", "the GPU check: training throughput, shaping cost and sampling speed on one chip",
         False, _table("gpu_check")),
    Page("levers", "frontier", "each lever against its twin at 8 steps and matched entropy", False, _levers),
    Page("opdlm", "opdlm", "OPDLM and its arms at CPU scale on the embedded corpus", True, _quality("opdlm")),
    Page("quality", "quality", "generative perplexity and entropy against sampling steps", True, _quality("quality")),
    Page("shaping_ablation", "shaping_ablation", "K and the selection policy: 500-step students of the synthetic "
         "language", True, _quality("shaping_ablation")),
    Page("shaping_cost", "shaping_cost", "distillation throughput, blind and shaped with K candidates", False,
         _table("shaping_cost")),
    Page("speed", "speed", "seconds per sequence of each model and sampler", False, _table("speed")),
    Page("teacher_steps", "teacher_steps", "teacher quality against sampling steps (the foundation table)", True,
         _quality("teacher_steps")),
]


@contextmanager
def results_in(directory: Path):
    """Rows read and pages written in ``directory`` for the block."""
    before = results_io.RESULTS
    results_io.RESULTS = Path(directory)
    try:
        yield
    finally:
        results_io.RESULTS = before


def write_pages(directory: Path | None = None, plot: bool = True) -> list[Path]:
    """Every page whose rows file exists in ``directory`` (default results_io.RESULTS), then the index; returns the
    pages written."""
    with results_in(directory or results_io.RESULTS):
        written = []
        for page in PAGES:
            if (results_io.RESULTS / f"{page.rows}.jsonl").exists():
                page.write(read_rows(page.rows), plot)
                written.append(results_io.RESULTS / f"{page.name}.md")
        index = results_io.RESULTS / INDEX
        index.write_text(index_page(results_io.RESULTS))
        return written + [index]


def index_page(directory: Path) -> str:
    """README.md: every page with the rows file it is made from, the rows files without a page, and the archive's
    files with their row counts (which change only when run.py --archive moves rows, and then rewrites this page)."""
    pages = [p for p in PAGES if (directory / f"{p.rows}.jsonl").exists()]
    paged = {p.rows for p in pages}
    table = [{"page": f"[{p.name}.md]({p.name}.md)", "made from": f"[{p.rows}.jsonl]({p.rows}.jsonl)",
              "plot": f"[{p.name}.png]({p.name}.png)" if p.has_plot else "", "what it shows": p.about} for p in pages]
    unpaged = [{"rows file": f"[{path.name}]({path.name})"}
               for path in sorted(directory.glob("*.jsonl")) if path.stem not in paged]
    archived = [{"archived rows": f"[{ARCHIVE}/{path.name}]({ARCHIVE}/{path.name})", "rows": _count(path)}
                for path in sorted((directory / ARCHIVE).glob("*.jsonl"))]
    lines = ["# Benchmark results", "",
             "Generated by `benchmarks/run.py --pages` from the rows beside it, never edited by hand. Every page is "
             "made from one rows file (`<benchmark>.jsonl`: one JSON object per measured row, with the command and the "
             "commit it was measured at); the arms that write the rows, every setting named, are in "
             "[benchmarks/registry](../registry).", "",
             markdown_table(table, ["page", "made from", "plot", "what it shows"]), ""]
    if unpaged:
        lines += ["## Rows without a page", "", markdown_table(unpaged, ["rows file"]), ""]
    lines += ["## Archive", "",
              "Rows moved out of the tables by `benchmarks/run.py --archive`, kept for the record and read by no page: "
              "rows measured from a tree with uncommitted changes (their commit ends in -dirty), rows that record other "
              "settings than their arm in the registry now names, and matched-entropy rows interpolated from such "
              "rows. Each names why it moved (`archive_reason`).", ""]
    lines += [markdown_table(archived, ["archived rows", "rows"]) if archived else "No rows are archived.", ""]
    return "\n".join(lines)


def _count(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())
