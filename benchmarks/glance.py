"""Results at a glance: each claim of benchmarks/glance.yaml against the blind student and the 1024-step teacher at
matched entropy, from the rows alone, in the table of glance.yaml the claim names.

    python benchmarks/glance.py [--results-dir DIR]

For each claim: the matched-entropy row (at the entropy its table names: the 1024-step teacher's T = 1 entropy,
cost_quality.REFERENCE, or the data's) of the claimed model, of the row it is compared with (the blind student, or
the peer a table is read against) at the same steps and, when the claim names one, of the 1024-step teacher; the
ratio of the claimed model's perplexity to each and the SE of its log, as cost_quality.py computes them (independent
sample sets); significant when the log ratio lies more than 2 SE from 0. A claim whose row is missing is "not
measured"; one whose rows were measured from a tree with uncommitted changes (a commit ending in -dirty) is refused.
A claim whose model is the one it is compared with is at ratio 1, SE 0 (one sample set). Writes DIR/glance.md, every
table under its title; ``update_readme`` writes each table between its markers in the README.
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
from cost_quality import REFERENCE, TEACHER_STEPS, matched_row, matched_rows, sweep_of, sweep_points  # noqa: E402
from quality import matched_ratio  # noqa: E402
from results_io import markdown_table, read_rows  # noqa: E402

CLAIMS = Path(__file__).parent / "glance.yaml"
README = ROOT / "README.md"
PAGE = "glance.md"
TABLE_KEYS = {"title", "begin", "end", "reference", "columns"}
#: the entropies a table's rows may be matched at: the 1024-step teacher's T = 1 entropy, or the data's
REFERENCES = (REFERENCE, "data")
CLAIM_KEYS = {"claim", "table", "dataset", "steps", "arm", "against", "teacher"}
ROWS_KEYS = {"benchmark", "method", "source"}
#: a ratio is significant when its log lies more than this many SEs from 0
SIGNIFICANCE_SE = 2.0
NOT_MEASURED = "not measured"
#: the columns a table may show (claim_row's), in the order a table names them
COLUMNS = ["claim", "matched perplexity", "ratio to the blind student", "significant", "ratio to the 1024-step teacher",
           "commit"]


@dataclass(frozen=True)
class Table:
    """A table of claims: ``title`` heads it in glance.md, the README holds it between ``begin`` and ``end``, its rows
    are matched at ``reference``'s entropy (REFERENCES), and it shows the (column, header) pairs of ``columns`` in
    order."""

    name: str
    title: str
    begin: str
    end: str
    reference: str
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Rows:
    """The rows of one model: ``method``'s of ``source`` in benchmarks/results/``benchmark``.jsonl."""

    benchmark: str
    method: str
    source: str


@dataclass(frozen=True)
class Claim:
    """``text``, a row of ``table``, about ``model`` at ``steps`` on ``dataset``: compared with ``against`` at ``steps``
    and, unless None, with ``teacher`` at 1024 steps."""

    text: str
    dataset: str
    steps: int
    model: Rows
    against: Rows
    teacher: Rows | None
    table: Table


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return load()


def load_claims(path: Path | None = None, registry: Registry | None = None) -> list[Claim]:
    """The claims of ``path`` (default CLAIMS), table by table in the order of its tables and in their order within
    a table, every key checked; an arm is looked up in ``registry`` (default: the registry of benchmarks/registry,
    read when a claim names an arm)."""
    path = CLAIMS if path is None else path
    content = _read(path)
    _check_keys(path.name, content, {"tables", "claims"})
    tables = _tables(path.name, content["tables"])
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
        if not isinstance(spec["table"], str) or spec["table"] not in tables:
            raise RegistryError(f"{where}: table: {spec['table']!r} is no table of tables: {sorted(tables)}.")
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
                                                               arms_of),
                            tables[spec["table"]]))
    empty = sorted(set(tables) - {claim.table.name for claim in claims})
    if empty:
        raise RegistryError(f"{path.name}: tables: no claim names {empty}.")
    order = list(tables)
    return sorted(claims, key=lambda claim: order.index(claim.table.name))


def _tables(where: str, specs) -> dict[str, Table]:
    """The tables of ``specs`` (glance.yaml's tables: NAME: {title, begin, end, reference, columns}) by name, in order;
    their markers all differ, their reference is one of REFERENCES and their columns are COLUMNS', each with a
    header."""
    if not isinstance(specs, dict) or not specs:
        raise RegistryError(f"{where}: tables: expected a non-empty mapping of NAME: {sorted(TABLE_KEYS)}.")
    tables = {}
    for name, spec in specs.items():
        at = f"{where}: tables: {name}"
        _check_keys(at, spec, TABLE_KEYS)
        if not all(isinstance(spec[key], str) and spec[key].strip() for key in ("title", "begin", "end")):
            raise RegistryError(f"{at}: title, begin and end are non-empty strings.")
        if spec["reference"] not in REFERENCES:
            raise RegistryError(f"{at}: reference: expected one of {list(REFERENCES)}, got {spec['reference']!r}.")
        columns = spec["columns"]
        if not isinstance(columns, dict) or not columns or not set(columns) <= set(COLUMNS):
            raise RegistryError(f"{at}: columns: expected a mapping of some of {COLUMNS} to their headers, got "
                                f"{columns!r}.")
        if not all(isinstance(header, str) and header.strip() and "|" not in header for header in columns.values()):
            raise RegistryError(f"{at}: columns: a header is a non-empty string without '|', got {columns!r}.")
        tables[name] = Table(name, spec["title"], spec["begin"], spec["end"], spec["reference"],
                             tuple(columns.items()))
    markers = [marker for table in tables.values() for marker in (table.begin, table.end)]
    if len(set(markers)) < len(markers):
        raise RegistryError(f"{where}: tables: every begin and end marker differs, got {markers}.")
    return tables


def _rows(where: str, value, dataset: str, steps: int, registry: Callable[[], Registry]) -> Rows:
    """The rows ``value`` names: an arm BENCHMARK/NAME of the registry that measures ``dataset`` at ``steps`` with its
    matched-entropy rows, or ``{benchmark, method, source}``."""
    if isinstance(value, dict):
        _check_keys(where, value, ROWS_KEYS)
        if not all(isinstance(v, str) and v for v in value.values()):
            raise RegistryError(f"{where}: benchmark, method and source are names, got {value!r}.")
        return Rows(value["benchmark"], value["method"], value["source"])
    if not isinstance(value, str):
        raise RegistryError(f"{where}: expected an arm BENCHMARK/NAME or {{benchmark: B, method: M, source: S}}, got "
                            f"{value!r}.")
    arm = registry().arms.get(value)
    if arm is None:
        raise RegistryError(f"{where}: {value!r} is no arm of the registry (arms are BENCHMARK/NAME; rows that no arm "
                            "measures are named {benchmark: B, method: M, source: S}).")
    if arm.script != "quality" or not arm.spec["judging"]["frontier"]:
        raise RegistryError(f"{where}: {value} writes no matched-entropy rows (an arm of quality.py with frontier: "
                            "true does).")
    if arm.spec["judging"]["dataset"] != dataset:
        raise RegistryError(f"{where}: {value} judges {arm.spec['judging']['dataset']!r}, not the claim's dataset "
                            f"{dataset!r}.")
    if steps not in arm.spec["sampling"]["steps"]:
        raise RegistryError(f"{where}: {value} samples at {arm.spec['sampling']['steps']} steps, not at {steps}.")
    return Rows(arm.benchmark, arm.spec["model"]["method"], arm.spec["model"]["source"])


def significance(ratio: float, log_ratio_se: float) -> str:
    """"yes" when the log ratio lies more than SIGNIFICANCE_SE SEs below 0, "yes (worse)" when as far above, else
    "no"."""
    if abs(math.log(ratio)) <= SIGNIFICANCE_SE * log_ratio_se:
        return "no"
    return "yes" if ratio < 1 else "yes (worse)"


def claim_row(claim: Claim, rows_of: Callable[[str], list[dict]] = read_rows) -> dict:
    """The table row of ``claim`` (COLUMNS, the perplexity a number, the rest text), the numbers it shows
    (ratio_to_blind, log_ratio_se_blind, ratio_to_teacher, log_ratio_se_teacher; None where not computed) and
    ``measured``: the (dataset, judge, sample count, seed, reference, reference entropy) of each row it read."""
    reference = claim.table.reference
    model, against = (_matched(rows, claim.dataset, claim.steps, reference, rows_of)
                      for rows in (claim.model, claim.against))
    teacher = _matched(claim.teacher, claim.dataset, TEACHER_STEPS, reference, rows_of) if claim.teacher else None
    out = {"claim": claim.text.replace("|", "\\|"), "matched perplexity": None,
           "ratio to the blind student": NOT_MEASURED, "significant": "",
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
    out["measured"] = [_conditions(row, _of_source(rows, rows_of)) for rows, row in read]
    out["matched perplexity"] = model["matched_gen_ppl"]
    if against is None:
        out["ratio to the blind student"] = f"{NOT_MEASURED} ({claim.against.method} at {claim.steps} steps)"
    else:
        ratio, se = (1.0, 0.0) if claim.model == claim.against else matched_ratio(model, against)
        out.update({"ratio to the blind student": _ratio_text(ratio, se), "significant": significance(ratio, se),
                    "ratio_to_blind": ratio, "log_ratio_se_blind": se})
    if teacher is not None:
        ratio, se = matched_ratio(model, teacher)
        out.update({"ratio to the 1024-step teacher": _ratio_text(ratio, se), "ratio_to_teacher": ratio,
                    "log_ratio_se_teacher": se})
    return out


def _matched(rows: Rows, dataset: str, steps: int, reference: str,
             rows_of: Callable[[str], list[dict]]) -> dict | None:
    return matched_row(matched_rows(_of_source(rows, rows_of), reference), dataset, rows.method, steps)


def _of_source(rows: Rows, rows_of: Callable[[str], list[dict]]) -> list[dict]:
    """The rows of ``rows``' benchmark from models of its source."""
    return [row for row in rows_of(rows.benchmark) if row.get("source") == rows.source]


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


def tables(claims: list[Claim] | None = None, rows_of: Callable[[str], list[dict]] = read_rows) -> dict[str, str]:
    """The markdown table of each table of the claims (default: those of benchmarks/glance.yaml) read from the rows, by
    name."""
    return {table.name: _markdown(table, group) for table, group in _by_table(claims, rows_of).items()}


def _by_table(claims: list[Claim] | None,
              rows_of: Callable[[str], list[dict]]) -> dict[Table, list[tuple[Claim, dict]]]:
    """Each claim with its ``claim_row``, table by table in the claims' order."""
    claims = load_claims() if claims is None else claims
    grouped: dict[Table, list[tuple[Claim, dict]]] = {}
    for claim, row in zip(claims, claim_rows(claims, rows_of)):
        grouped.setdefault(claim.table, []).append((claim, row))
    return grouped


def _markdown(table: Table, group: list[tuple[Claim, dict]]) -> str:
    """The rows of ``group`` under ``table``'s headers."""
    return markdown_table([{header: row[column] for column, header in table.columns} for _, row in group],
                          [header for _, header in table.columns])


def page(claims: list[Claim] | None = None, rows_of: Callable[[str], list[dict]] = read_rows) -> str:
    """glance.md: each table under its title (the first table's is the page's), with what it is read from and how, and
    the judge, sample count, seed and entropy reference of its rows."""
    lines = []
    for i, (table, group) in enumerate(_by_table(claims, rows_of).items()):
        files = sorted({f"{r.benchmark}.jsonl" for c, _ in group for r in (c.model, c.against, c.teacher)
                        if r is not None})
        conditions = sorted({c for _, row in group for c in row["measured"]}, key=lambda c: tuple(map(str, c)))
        measured = "; ".join(_conditions_text(c) for c in conditions) or "no row is measured yet"
        lines += [f"{'#' if i == 0 else '##'} {table.title}", "",
                  f"Generated by benchmarks/glance.py from the claims of benchmarks/glance.yaml and the rows of "
                  f"{', '.join(files)}; benchmarks/run.py --pages writes the same table into the repository's "
                  f"README.md. The rows: {measured}. Each claim's matched perplexity over that of the row it is "
                  "compared with (the blind student, or the peer the table is read against) at the same steps and over "
                  "the 1024-step teacher's, with the SE of the log ratio in brackets (independent "
                  f"sample sets). significant: the log ratio lies more than {SIGNIFICANCE_SE:g} SE from 0 (yes "
                  "(worse): the claimed model's perplexity is the higher). commit: of the claimed model's row, then of "
                  "the rows it is compared with where they differ. A claim without rows is not measured; one whose "
                  "rows were measured from a tree with uncommitted changes is refused.", "",
                  _markdown(table, group), ""]
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
    """Replace what lies between each table's markers in ``path`` with the table; a table without both markers
    (begin before end) is not written, with a warning. Returns whether every table's block is there."""
    text = updated = path.read_text()
    every = True
    for table, group in _by_table(claims, rows_of).items():
        begin, end = updated.find(table.begin), updated.find(table.end)
        if begin < 0 or end < begin:
            print(f"glance.py: {path} holds no {table.begin} ... {table.end} block; the table {table.name!r} is not "
                  "written there.", file=sys.stderr)
            every = False
            continue
        start = begin + len(table.begin)
        updated = updated[:start] + "\n" + _markdown(table, group) + "\n" + updated[end:]
    if updated != text:
        path.write_text(updated)
    return every


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(results_io.RESULTS),
                        help="where the rows are read and glance.md written (default %(default)s)")
    results_io.RESULTS = Path(parser.parse_args(argv).results_dir)
    print(f"wrote {write_page()}")


if __name__ == "__main__":
    main()
