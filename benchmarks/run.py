#!/usr/bin/env python
"""Run benchmark arms from the registry (benchmarks/registry/*.yaml): train what is missing, measure, record rows.

    benchmarks/run.py --arm frontier/textlike-student-blind --dry-run   # the exact commands, nothing run
    benchmarks/run.py --stage "reproduce_textlike.sh frontier"        # every arm and training of a stage
    benchmarks/run.py --benchmark cost_quality                        # every arm of a benchmark
    benchmarks/run.py --train textlike_causal_lm                      # a training (and the runs it reads)
    benchmarks/run.py --list                                          # the arms, their stages and benchmarks
    benchmarks/run.py --pages                                         # every page, the index, the README's tables
    benchmarks/run.py --archive --dry-run                             # the rows the archive would move, and why

For the arms selected: every training run they read that has no .done marker is trained first (``tsdfm fit`` in
runs/NAME, continued from its own last.ckpt when an earlier run was interrupted, then marked .done), each arm is
measured by its benchmark script with every setting the registry names (the rows are appended to
benchmarks/results/<benchmark>.jsonl), and the pages are regenerated. Rows are recorded from a committed tree only: a
tree with uncommitted changes is refused unless --allow-dirty, and then the rows' commit ends in -dirty (the archive
moves such rows out of the tables). Run from anywhere; commands run in the repository root.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from arms import REGISTRY, ROOT, Arm, Registry, Training, load  # noqa: E402
from commands import DONE, Programs, fit_command, measure_command  # noqa: E402


@dataclass(frozen=True)
class Step:
    """One command of a plan: a training (marked done when it succeeds), a measurement (records rows), or the pages."""

    about: str
    command: list[str]
    done_marker: str | None = None
    records_rows: bool = False


class DirtyTree(SystemExit):
    """Rows would be recorded from a tree with uncommitted changes."""


def select(registry: Registry, arms: list[str], benchmarks: list[str], stages: list[str],
           trainings: list[str]) -> tuple[list[Training], list[Arm]]:
    """The trainings and arms named, by arm, benchmark, stage or training name, in registry order."""
    unknown = ([a for a in arms if a not in registry.arms] + [b for b in benchmarks if b not in registry.benchmarks()]
               + [s for s in stages if s not in registry.stages()] + [t for t in trainings if t not in registry.trainings])
    if unknown:
        raise SystemExit(f"run.py: unknown {', '.join(map(repr, unknown))}: see benchmarks/run.py --list "
                         "(arms are BENCHMARK/NAME, stages 'reproduce_SCRIPT.sh ARGS').")
    chosen_arms = [arm for name, arm in registry.arms.items()
                   if name in arms or arm.benchmark in benchmarks or set(arm.stages) & set(stages)]
    chosen_trainings = [t for name, t in registry.trainings.items() if name in trainings or set(t.stages) & set(stages)]
    return chosen_trainings, chosen_arms


def training_steps(registry: Registry, wanted: list[str], root: Path, programs: Programs) -> list[Step]:
    """``tsdfm fit`` of every run in ``wanted`` and every run they read, that has no .done marker, runs read first."""
    order: list[Training] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise SystemExit(f"run.py: the trainings {' -> '.join(path + (name,))} read each other.")
        training = registry.trainings[name]
        if training in order or (root / training.run_dir / DONE).exists():
            return
        for need in training.needs():
            visit(need, path + (name,))
        order.append(training)

    for name in wanted:
        visit(name, ())
    steps = []
    for training in order:
        resume = (root / training.last_checkpoint).exists()
        about = f"train {training.run_dir}" + (" (interrupted: continued from its last.ckpt)" if resume else "")
        steps.append(Step(about, fit_command(training, programs, resume), done_marker=f"{training.run_dir}/{DONE}"))
    return steps


def plan(registry: Registry, trainings: list[Training], arms: list[Arm], root: Path, programs: Programs) -> list[Step]:
    """The trainings that are missing, one measurement per arm, then the pages when an arm is measured."""
    wanted = [t.name for t in trainings] + [run for arm in arms for run in arm.needs()]
    steps = training_steps(registry, list(dict.fromkeys(wanted)), root, programs)
    steps += [Step(f"measure {arm.full_name}: rows in benchmarks/results/{arm.benchmark}.jsonl",
                   measure_command(arm, programs), records_rows=True) for arm in arms]
    if arms:
        steps.append(Step("regenerate the pages from the rows", [programs.python, "benchmarks/run.py", "--pages"]))
    return steps


def check_clean(allow_dirty: bool) -> str:
    """The commit rows will name; refused when it ends in -dirty, unless ``allow_dirty``."""
    commit = results_io.git_commit()
    if commit.endswith("-dirty") and not allow_dirty:
        raise DirtyTree(f"run.py: the working tree has uncommitted changes ({commit}): rows recorded now would not say "
                        "what they were measured with. Commit the changes first, or pass --allow-dirty to record them "
                        "anyway, marked by their -dirty commit (benchmarks/run.py --archive moves such rows out of the "
                        "tables).")
    return commit


def show(steps: list[Step]) -> None:
    for step in steps:
        print(f"# {step.about}")
        print(shlex.join(step.command))
        if step.done_marker:
            print(shlex.join(["touch", step.done_marker]))


def execute(steps: list[Step], root: Path, allow_dirty: bool) -> None:
    """Run the steps in ``root``, stopping at the first that fails; a tree's cleanliness is checked before each
    measurement (a training may take hours while the tree changes)."""
    if any(step.records_rows for step in steps):
        check_clean(allow_dirty)
    for step in steps:
        if step.records_rows:
            check_clean(allow_dirty)
        print(f"# {step.about}\n{shlex.join(step.command)}", flush=True)
        status = subprocess.run(step.command, cwd=root).returncode
        if status != 0:
            raise SystemExit(f"run.py: {step.about} failed (exit {status}); the steps before it are kept.")
        if step.done_marker:
            (root / step.done_marker).touch()


def write_readme_table(root: Path) -> None:
    """The tables of benchmarks/glance.yaml, each between its markers in root/README.md (glance.update_readme), from
    the rows."""
    import glance

    if glance.update_readme(root / "README.md"):
        print(f"wrote the glance tables of {root / 'README.md'}")


def list_registry(registry: Registry) -> None:
    for arm in registry.arms.values():
        print(f"{arm.full_name:<72} {'; '.join(arm.stages)}")
    print(f"\n{len(registry.arms)} arms of {len(registry.benchmarks())} benchmarks, {len(registry.trainings)} trainings; "
          "stages:")
    for stage in registry.stages():
        print(f"  {stage}")


def main(argv: list[str] | None = None, root: Path = ROOT, programs: Programs | None = None,
         registry_dir: Path = REGISTRY) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", action="append", default=[], metavar="BENCHMARK/NAME", help="an arm (repeatable)")
    parser.add_argument("--benchmark", action="append", default=[], metavar="NAME",
                        help="every arm of a benchmark, e.g. cost_quality (repeatable)")
    parser.add_argument("--stage", action="append", default=[], metavar="'reproduce_SCRIPT.sh ARGS'",
                        help="every arm and training of a reproduce_*.sh stage (repeatable)")
    parser.add_argument("--train", action="append", default=[], metavar="RUN",
                        help="a training of registry/trainings.yaml, and the runs it reads (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the exact commands (with --archive: the rows that would move), run nothing")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="record rows from a tree with uncommitted changes; their commit ends in -dirty")
    parser.add_argument("--list", action="store_true", help="list the arms, their stages, and every stage")
    parser.add_argument("--pages", action="store_true",
                        help="regenerate every page, the index and the README's glance tables from the rows")
    parser.add_argument("--archive", action="store_true",
                        help="move the rows that no longer follow from the registry to results/archive/, then "
                             "regenerate the pages")
    args = parser.parse_args(argv)
    if args.pages:
        import pages

        for path in pages.write_pages():
            print(f"wrote {path}")
        write_readme_table(root)
        return
    registry = load(registry_dir)
    if args.list:
        list_registry(registry)
        return
    if args.archive:
        import archive
        import pages

        moved = archive.archive(registry, dry_run=args.dry_run)
        for benchmark, reasons in moved.items():
            print(f"{benchmark}.jsonl: {sum(reasons.values())} rows" + (" would move" if args.dry_run else " moved"))
            for reason, count in reasons.most_common():
                print(f"  {count:4d}  {reason}")
        if not moved:
            print("run.py: every row follows from the registry; nothing to move.")
        if moved and not args.dry_run:
            pages.write_pages()
            write_readme_table(root)
        return
    trainings, arms = select(registry, args.arm, args.benchmark, args.stage, args.train)
    if not trainings and not arms:
        parser.error("name what to run: --arm, --benchmark, --stage or --train (or --list, --pages, --archive)")
    steps = plan(registry, trainings, arms, root, programs or Programs.of_this_interpreter())
    if args.dry_run:
        show(steps)
        if any(s.records_rows for s in steps) and results_io.git_commit().endswith("-dirty") and not args.allow_dirty:
            print("# the tree has uncommitted changes: a real run refuses to record rows (--allow-dirty records "
                  "them, marked -dirty)")
        return
    if not steps:
        print("run.py: every training named is done and no arm is selected; nothing to run.")
        return
    execute(steps, root, args.allow_dirty)


if __name__ == "__main__":
    main()
