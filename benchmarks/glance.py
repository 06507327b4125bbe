"""Results at a glance: each claim of benchmarks/glance.yaml against the blind student and the 1024-step teacher at
matched entropy, from the rows alone.

    python benchmarks/glance.py [--results-dir DIR]

For each claim: the matched-entropy row (at the 1024-step teacher's T = 1 entropy, cost_quality.REFERENCE) of the
claimed model, of the blind student at the same steps and, when the claim names one, of the 1024-step teacher; the
ratio of the claimed model's perplexity to each and the SE of its log, as cost_quality.py computes them (independent
sample sets); significant when the log ratio lies more than 2 SE from 0. A claim whose row is missing is "not
measured"; one whose rows were measured from a tree with uncommitted changes (a commit ending in -dirty) is refused.
Writes DIR/glance.md; ``update_readme`` writes the same table between the README's glance markers.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from arms import ROOT, Registry, RegistryError, _check_keys, _read, load  # noqa: E402
from cost_quality import TEACHER_STEPS, matched_row, matched_rows, sweep_of, sweep_points  # noqa: E402
from quality import matched_ratio  # noqa: E402
from results_io import markdown_table, read_rows  # noqa: E402

CLAIMS = Path(__file__).parent / "glance.yaml"
README = ROOT / "README.md"
PAGE = "glance.md"
BEGIN, END = "<!-- glance:begin -->", "<!-- glance:end -->"
CLAIM_KEYS = {"claim", "dataset", "steps", "arm", "against", "teacher"}
ROWS_KEYS = {"benchmark", "method"}
#: a ratio is significant when its log lies more than this many SEs from 0
SIGNIFICANCE_SE = 2.0
NOT_MEASURED = "not measured"
COLUMNS = ["claim", "ratio to the blind student", "significant", "ratio to the 1024-step teacher", "commit"]


@dataclass(frozen=True)
class Rows:
    """The rows of one model: ``method``'s in benchmarks/results/``benchmark``.jsonl."""

    benchmark: str
    method: str


@dataclass(frozen=True)
class Claim:
    """``text``, about ``model`` at ``steps`` on ``dataset``: compared with ``against`` at ``steps`` and, unless None,
    with ``teacher`` at 1024 steps."""

    text: str
    dataset: str
    steps: int
    model: Rows
    against: Rows
    teacher: Rows | None


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return load()


def load_claims(path: Path | None = None, registry: Registry | None = None) -> list[Claim]:
    """The claims of ``path`` (default CLAIMS) in order, every key checked; an arm is looked up in ``registry``
    (default: the registry of benchmarks/registry, read when a claim names an arm)."""
    path = CLAIMS if path is None else path
    content = _read(path)
    _check_keys(path.name, content, {"claims"})
    if not isinstance(content["claims"], list) or not content["claims"]:
        raise RegistryError(f"{path.name}: claims: expected a non-empty list.")
    arms_of = (lambda: registry) if registry is not None else _registry
    claims = []
    for i, spec in enumerate(content["claims"]):
        where = f"{path.name}: claims[{i}]"
        _check_keys(where, spec, CLAIM_KEYS)
        if not isinstance(spec["claim"], str) or not spec["claim"].strip():
            raise RegistryError(f"{where}: claim: expected the sentence of the first column, got {spec['claim']!r}.")
        where = f"{path.name}: {spec['claim']!r}"
        if not isinstance(spec["dataset"], str):
            raise RegistryError(f"{where}: dataset: expected a name, got {spec['dataset']!r}.")
        if type(spec["steps"]) is not int or spec["steps"] < 1:
            raise RegistryError(f"{where}: steps: expected a positive integer, got {spec['steps']!r}.")
        dataset, steps = spec["dataset"], spec["steps"]
        teacher = spec["teacher"]
        claims.append(Claim(spec["claim"], dataset, steps,
                            _rows(f"{where}: arm", spec["arm"], dataset, steps, arms_of),
                            _rows(f"{where}: against", spec["against"], dataset, steps, arms_of),
                            None if teacher is None else _rows(f"{where}: teacher", teacher, dataset, TEACHER_STEPS,
                                                               arms_of)))
    return claims


def _rows(where: str, value, dataset: str, steps: int, registry: Callable[[], Registry]) -> Rows:
    """The rows ``value`` names: an arm BENCHMARK/NAME of the registry that measures ``dataset`` at ``steps`` with its
    matched-entropy rows, or ``{benchmark, method}``."""
    if isinstance(value, dict):
        _check_keys(where, value, ROWS_KEYS)
        if not all(isinstance(v, str) and v for v in value.values()):
            raise RegistryError(f"{where}: benchmark and method are names, got {value!r}.")
        return Rows(value["benchmark"], value["method"])
    if not isinstance(value, str):
        raise RegistryError(f"{where}: expected an arm BENCHMARK/NAME or {{benchmark: B, method: M}}, got {value!r}.")
    arm = registry().arms.get(value)
    if arm is None:
        raise RegistryError(f"{where}: {value!r} is no arm of the registry (arms are BENCHMARK/NAME; rows that no arm "
                            "measures are named {benchmark: B, method: M}).")
    if arm.script != "quality" or not arm.spec["judging"]["frontier"]:
        raise RegistryError(f"{where}: {value} writes no matched-entropy rows (an arm of quality.py with frontier: "
                            "true does).")
    if arm.spec["judging"]["dataset"] != dataset:
        raise RegistryError(f"{where}: {value} judges {arm.spec['judging']['dataset']!r}, not the claim's dataset "
                            f"{dataset!r}.")
    if steps not in arm.spec["sampling"]["steps"]:
        raise RegistryError(f"{where}: {value} samples at {arm.spec['sampling']['steps']} steps, not at {steps}.")
    return Rows(arm.benchmark, arm.spec["model"]["method"])


def significance(ratio: float, log_ratio_se: float) -> str:
    """"yes" when the log ratio lies more than SIGNIFICANCE_SE SEs below 0, "yes (worse)" when as far above, else
    "no"."""
    if abs(math.log(ratio)) <= SIGNIFICANCE_SE * log_ratio_se:
        return "no"
    return "yes" if ratio < 1 else "yes (worse)"


def claim_row(claim: Claim, rows_of: Callable[[str], list[dict]] = read_rows) -> dict:
    """The table row of ``claim`` (COLUMNS, as text), the numbers it shows (ratio_to_blind, log_ratio_se_blind,
    ratio_to_teacher, log_ratio_se_teacher; None where not computed) and ``measured``: the (dataset, judge, sample
    count, seed, reference, reference entropy) of each row it read."""
    model, against = (_matched(rows, claim.dataset, claim.steps, rows_of) for rows in (claim.model, claim.against))
    teacher = _matched(claim.teacher, claim.dataset, TEACHER_STEPS, rows_of) if claim.teacher else None
    out = {"claim": claim.text.replace("|", "\\|"), "ratio to the blind student": NOT_MEASURED, "significant": "",
           "ratio to the 1024-step teacher": NOT_MEASURED if claim.teacher else "", "commit": "",
           "ratio_to_blind": None, "log_ratio_se_blind": None, "ratio_to_teacher": None, "log_ratio_se_teacher": None,
           "measured": []}
    if model is None:
        return out
    read = [(claim.model, model)] + [(rows, row) for rows, row in ((claim.against, against), (claim.teacher, teacher))
                                     if row is not None]
    commits = [row.get("commit") or "unknown" for _, row in read]
    out["commit"] = ", ".join(dict.fromkeys(commits))
    dirty = [commit for commit in dict.fromkeys(commits) if commit.endswith("-dirty")]
    if dirty:
        refused = f"refused: measured from a tree with uncommitted changes ({', '.join(dirty)})"
        out["ratio to the blind student"] = refused
        out["ratio to the 1024-step teacher"] = "refused" if claim.teacher else ""
        return out
    out["measured"] = [_conditions(row, rows_of(rows.benchmark)) for rows, row in read]
    if against is None:
        out["ratio to the blind student"] = f"{NOT_MEASURED} ({claim.against.method} at {claim.steps} steps)"
    else:
        ratio, se = matched_ratio(model, against)
        out.update({"ratio to the blind student": _ratio_text(ratio, se), "significant": significance(ratio, se),
                    "ratio_to_blind": ratio, "log_ratio_se_blind": se})
    if teacher is not None:
        ratio, se = matched_ratio(model, teacher)
        out.update({"ratio to the 1024-step teacher": _ratio_text(ratio, se), "ratio_to_teacher": ratio,
                    "log_ratio_se_teacher": se})
    return out


def _matched(rows: Rows, dataset: str, steps: int, rows_of: Callable[[str], list[dict]]) -> dict | None:
    return matched_row(matched_rows(rows_of(rows.benchmark)), dataset, rows.method, steps)


def _conditions(row: dict, benchmark_rows: list[dict]) -> tuple:
    """(dataset, judge, sample count, seed, reference, reference entropy) of a matched row; the sample count is its
    sweep's (None when the sweep's rows are gone)."""
    try:
        samples = sweep_of(sweep_points(benchmark_rows), row)["n_samples"]
    except ValueError:  # no sweep point of the row's model
        samples = None
    return (row["dataset"], row["judge"], samples, row.get("seed"), row["reference"], row.get("reference_entropy"))


def _ratio_text(ratio: float, log_ratio_se: float) -> str:
    return f"{ratio:.3f}x ({log_ratio_se:.3f})"


def claim_rows(claims: list[Claim], rows_of: Callable[[str], list[dict]] = read_rows) -> list[dict]:
    """``claim_row`` of every claim, each benchmark's rows read once."""
    read: dict[str, list[dict]] = {}

    def rows_once(benchmark: str) -> list[dict]:
        if benchmark not in read:
            read[benchmark] = rows_of(benchmark)
        return read[benchmark]

    return [claim_row(claim, rows_once) for claim in claims]


def table(claims: list[Claim] | None = None, rows_of: Callable[[str], list[dict]] = read_rows) -> str:
    """The markdown table of the claims (default: those of benchmarks/glance.yaml) read from the rows."""
    return markdown_table(claim_rows(load_claims() if claims is None else claims, rows_of), COLUMNS)


def page(claims: list[Claim] | None = None, rows_of: Callable[[str], list[dict]] = read_rows) -> str:
    """glance.md: what the table is read from and how, the judge, sample count, seed and entropy reference of its rows,
    and the table."""
    claims = load_claims() if claims is None else claims
    rows = claim_rows(claims, rows_of)
    files = sorted({f"{r.benchmark}.jsonl" for c in claims for r in (c.model, c.against, c.teacher) if r is not None})
    conditions = sorted({c for row in rows for c in row["measured"]}, key=lambda c: tuple(map(str, c)))
    measured = "; ".join(_conditions_text(c) for c in conditions) or "no row is measured yet"
    lines = ["# Results at a glance", "",
             f"Generated by benchmarks/glance.py from the claims of benchmarks/glance.yaml and the rows of "
             f"{', '.join(files)}; benchmarks/run.py --pages writes the same table into the repository's README.md. "
             f"The rows: {measured}. Each claim's matched perplexity over the blind student's at the same steps and "
             "over the 1024-step teacher's, with the SE of the log ratio in brackets (independent sample sets). "
             f"significant: the log ratio lies more than {SIGNIFICANCE_SE:g} SE from 0 (yes (worse): the claimed "
             "model's perplexity is the higher). commit: of the claimed model's row, then of the rows it is compared "
             "with where they differ. A claim without rows is not measured; one whose rows were measured from a tree "
             "with uncommitted changes is refused.", "",
             markdown_table(rows, COLUMNS), ""]
    return "\n".join(lines)


def _conditions_text(conditions: tuple) -> str:
    dataset, judge, samples, seed, reference, entropy = conditions
    count = f"{samples} samples" if samples is not None else "an unrecorded sample count"
    at = f"the {reference} entropy" + (f" {entropy:.3f}" if entropy is not None else "")
    return f"{dataset}: {judge} judge, {count}, seed {seed}, matched at {at}"


def write_page() -> Path:
    """glance.md in results_io.RESULTS, from the rows there."""
    path = results_io.RESULTS / PAGE
    path.write_text(page())
    return path


def update_readme(path: Path = README, claims: list[Claim] | None = None,
                  rows_of: Callable[[str], list[dict]] = read_rows) -> bool:
    """Replace what lies between the glance markers of ``path`` with the table; without both markers (begin before
    end), print a warning and leave the file alone. Returns whether the block is there."""
    text = path.read_text()
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        print(f"glance.py: {path} holds no {BEGIN} ... {END} block; the table is not written there.", file=sys.stderr)
        return False
    start = begin + len(BEGIN)
    updated = text[:start] + "\n" + table(claims, rows_of) + "\n" + text[end:]
    if updated != text:
        path.write_text(updated)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(results_io.RESULTS),
                        help="where the rows are read and glance.md written (default %(default)s)")
    results_io.RESULTS = Path(parser.parse_args(argv).results_dir)
    print(f"wrote {write_page()}")


if __name__ == "__main__":
    main()
