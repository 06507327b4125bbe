"""The archive: rows that no longer follow from the registry move to ``benchmarks/results/archive/<benchmark>.jsonl``.

A row moves when it was measured from a tree with uncommitted changes (its commit ends in ``-dirty``), when it
records other settings than every registry arm that could have measured it now names (K = 4 and argmin where the
arm's training is now Boltzmann over K = 16, another sample count, a temperature outside the arm's sweep, ...), or
when it is a matched-entropy row interpolated from a sweep that lost a row. A row that no arm could have measured
stays: the registry does not cover its stage. Each moved row names why (``archive_reason``); the rows that stay keep
their order.
"""

from __future__ import annotations

import math
from collections import Counter

import results_io
from arms import Arm, Registry
from results_io import read_rows, write_rows

ARCHIVE = "archive"
DIRTY = "-dirty"
#: a row's compass as the rows name it (older rows hold the compass's path)
COMPASS_LABELS = frozenset({"oracle", "oracle-sequence", "learned", "causal-lm", "path-lm"})
PATH_LM_MODULE = "PathLMModule"
#: a compass name that reads a causal LM over whole proposals (its path after the prefix may be a registry run's)
PROPOSAL_ENERGY_PREFIXES = ("ar:", "hf:")


def compass_label(name: str | None, registry: Registry | None = None) -> str | None:
    """``oracle``, ``oracle-sequence``, ``learned`` (an NCE compass), ``causal-lm`` or ``path-lm``, from a label or a
    path; ``ar:``/``hf:`` name a causal LM; a path that a registry training writes takes its kind from that training's
    config, so the label does not depend on whether the checkpoint is on this machine."""
    if name is None or name in COMPASS_LABELS:
        return name
    if name.startswith(PROPOSAL_ENERGY_PREFIXES):  # ar:<causal LM>, hf:<model>: an energy over whole proposals
        return "causal-lm"
    training = registry.training_of(name) if registry is not None else None
    if training is not None:
        module = str((training.config_values().get("model") or {}).get("class_path", ""))
        return "path-lm" if module.endswith(PATH_LM_MODULE) else "learned"
    from quality import compass_labels

    return compass_labels(name)["compass"]


def judge_label(spec: str) -> str:
    """The name rows give the judge ``spec``: oracle, smollm2-135m, ar:<run>."""
    if spec == "smollm2":
        return "smollm2-135m"
    if spec.startswith("ar:"):
        from lightning_tsdfm.metrics.judges import run_label

        return "ar:" + run_label(spec[3:])
    return spec


def reasons(rows: list[dict], arms: list[Arm], registry: Registry) -> list[str | None]:
    """Why each row of one benchmark moves to the archive (None: it stays), ``arms`` the benchmark's arms."""
    out = [_own_reason(row, arms, registry) for row in rows]
    moved = {(_sweep(row), row.get("sampling_temperature")) for row, why in zip(rows, out)
             if why and not row.get("reference")}
    return [why or ("interpolated from archived sweep rows" if row.get("reference") and _from_moved(row, moved) else None)
            for row, why in zip(rows, out)]


def _sweep(row: dict) -> tuple:
    """The sweep a row belongs to, as quality.py's frontier and conditional.py's matched rows group them."""
    return (row.get("dataset"), row.get("template"), row.get("method"), row.get("compass"), row.get("source"),
            row.get("steps"), row.get("judge"))


def _from_moved(matched: dict, moved: set) -> bool:
    """Whether a matched-entropy row was interpolated between sweep rows that move (any of its sweep's rows when it
    names no bracketing temperatures)."""
    temperatures = matched.get("bracket") or matched.get("sampling_temperatures") or []
    return any((_sweep(matched), t) in moved for t in temperatures)


def _own_reason(row: dict, arms: list[Arm], registry: Registry) -> str | None:
    if str(row.get("commit", "")).endswith(DIRTY):
        return f"measured from a tree with uncommitted changes ({row['commit']})"
    if row.get("method") == "data":
        return None
    candidates = [arm for arm in arms if _could_have_measured(arm, row, registry)]
    if not candidates:
        return None
    found = [(arm, differences(arm, row, registry)) for arm in candidates]
    if any(not diffs for _, diffs in found):
        return None
    arm, diffs = min(found, key=lambda pair: len(pair[1]))
    return f"{arm.full_name} now names other settings: " + "; ".join(diffs)


def _could_have_measured(arm: Arm, row: dict, registry: Registry) -> bool:
    """Whether ``row`` is of ``arm``'s model: the same dataset, source, method and compass (or energy)."""
    spec = arm.spec
    if arm.script == "quality":
        model = spec["model"]
        return ((spec["judging"]["dataset"], model["source"], model["method"]) == (row.get("dataset"), row.get("source"),
                                                                                 row.get("method"))
                and compass_label(row.get("compass"), registry) == _arm_compass(arm, registry))
    if arm.script == "compasses":
        instrument = spec["instrument"]
        return ((instrument["teacher"], instrument["steps"]) == (row.get("teacher"), row.get("steps"))
                and row.get("compass") in spec["compasses"])
    if arm.script == "speed":
        return spec["timing"]["dataset"] == row.get("dataset") and bool(_speed_models(arm, row))
    return (spec["conditions"]["dataset"], spec["model"]["method"]) == (row.get("dataset"), row.get("method"))


def _arm_compass(arm: Arm, registry: Registry) -> str | None:
    """The compass label of an arm's rows: its sampling shaping's, else its training's, else None."""
    shaping = arm.spec["sampling_shaping"]
    if shaping is None:
        training = registry.training_of(arm.spec["model"]["checkpoint"])
        shaping = training.shaping if training else None
    return compass_label(shaping["compass"], registry) if shaping else None


def _speed_models(arm: Arm, row: dict) -> list[dict]:
    return [m for m in arm.spec["models"] if (m["method"], m["source"]) == (row.get("method"), row.get("source"))
            and row.get("sampler") in (None, m["sampler"])]


class Differences(list):
    """``name recorded, the arm names expected`` for each setting a row records otherwise than its arm names it."""

    def compare(self, name: str, recorded, expected) -> None:
        """Settings a row does not record (None) are not compared."""
        if recorded is not None and recorded != expected:
            self.append(f"{name} {recorded!r}, the arm names {expected!r}")

    def among(self, name: str, recorded, expected: list) -> None:
        if recorded is not None and recorded not in expected:
            self.append(f"{name} {recorded!r}, the arm names {expected!r}")


def differences(arm: Arm, row: dict, registry: Registry) -> list[str]:
    """Every setting ``row`` records otherwise than ``arm`` names it (empty: the arm makes this row)."""
    diffs = Differences()
    spec = arm.spec
    if arm.script == "quality":
        _quality_differences(arm, row, registry, diffs)
    elif arm.script == "compasses":
        instrument = spec["instrument"]
        diffs.compare("k", row.get("k"), instrument["k"])
        diffs.compare("n_states", row.get("n_states"), instrument["num_states"])
        diffs.compare("seed", row.get("seed"), instrument["seed"])
        diffs.among("m", row.get("m"), instrument["filler_draws"])
        diffs.among("jump", row.get("jump"), instrument["jump_sizes"])
    elif arm.script == "speed":
        timing = spec["timing"]
        for key in ("batch_size", "repeats", "seed"):
            diffs.compare(key, row.get(key), timing[key])
        models = _speed_models(arm, row)
        if not any(row.get("steps") in m["steps"] and row.get("checkpoint") in (None, m["checkpoint"]) for m in models):
            diffs.append(f"steps {row.get('steps')} of {row.get('checkpoint')}, the arm times "
                         + ", ".join(f"{m['steps']} of {m['checkpoint']}" for m in models))
    else:
        _conditional_differences(arm, row, diffs)
    return list(diffs)


def _conditional_differences(arm: Arm, row: dict, diffs: Differences) -> None:
    """A conditional row (per temperature, or matched: its sweep's identity) against its arm, the sampling shaping
    included."""
    model, sampling, conditions = arm.spec["model"], arm.spec["sampling"], arm.spec["conditions"]
    diffs.among("template", row.get("template"), conditions["templates"])
    diffs.among("judge", row.get("judge"), [judge_label(j) for j in conditions["judges"]])
    diffs.among("steps", row.get("steps"), sampling["steps"])
    diffs.compare("sampler", row.get("sampler"), sampling["sampler"])
    diffs.among("sampling_temperature", row.get("sampling_temperature"), sampling["temperatures"])
    diffs.compare("n_samples", row.get("n_samples"), conditions["num_conditions"])
    diffs.compare("seed", row.get("seed"), conditions["seed"])
    diffs.compare("checkpoint", row.get("checkpoint"), model["checkpoint"])
    guide = arm.spec["sampling_shaping"]
    if guide is not None and not row.get("sampling_shaping"):
        diffs.append("sampled blind, the arm is guided while it samples")
    elif guide is not None:
        _compare_shaping(guide, row["sampling_shaping"], diffs, "sampled with ")
    elif row.get("sampling_shaping"):
        diffs.append("guided while it sampled, the arm samples blind")


def _quality_differences(arm: Arm, row: dict, registry: Registry, diffs: Differences) -> None:
    model, sampling, judging = arm.spec["model"], arm.spec["sampling"], arm.spec["judging"]
    diffs.among("steps", row.get("steps"), sampling["steps"])
    diffs.among("judge", row.get("judge"), [judge_label(j) for j in judging["judges"]])
    diffs.compare("seed", row.get("seed"), judging["seed"])
    diffs.compare("checkpoint", row.get("checkpoint"), model["checkpoint"])
    if not row.get("reference"):  # a sweep row; a matched row carries its sweep's identity only
        diffs.among("sampling_temperature", row.get("sampling_temperature"), sampling["temperatures"])
        diffs.compare("sampler", row.get("sampler"), sampling["sampler"])
        diffs.compare("n_samples", row.get("n_samples"), judging["num_samples"])
    expected_grid = _step_sizes(sampling["step_sizes"])
    if row.get("step_sizes") is not None and not _same_grid(row["step_sizes"], expected_grid):
        diffs.append(f"step_sizes {row['step_sizes']}, the arm names {sampling['step_sizes']}")
    training = registry.training_of(model["checkpoint"])
    if training is not None:
        if training.fixed_steps() is not None:
            diffs.compare("train_steps", row.get("train_steps"), training.fixed_steps())
        if training.setting("model.init_args.trajectory") is not None:
            diffs.compare("trajectory", row.get("trajectory"), training.setting("model.init_args.trajectory"))
    guide = arm.spec["sampling_shaping"]
    if guide is not None:
        recorded = row.get("sampling_shaping") or {"num_candidates": row.get("k"), "policy": row.get("policy")}
        _compare_shaping(guide, recorded, diffs, "sampled with ")
        return
    if row.get("sampling_shaping"):
        diffs.append("guided while it sampled, the arm samples blind")
        return
    shaping = training.shaping if training is not None else None
    if shaping is None:
        diffs.compare("k", row.get("k"), None)  # a shaped row of a blind arm
    elif row.get("k") is None and row.get("policy") is None:
        diffs.append("records no shaping, the arm's training is shaped")
    else:
        _compare_shaping(shaping, {"compass": row.get("compass_path") or row.get("compass"), "num_candidates": row.get("k"),
                                   "policy": row.get("policy"),
                                   "selection_temperature": row.get("selection_temperature", row.get("temperature")),
                                   "switch_time": row.get("switch_time"), "shape_from": row.get("shape_from"),
                                   "filler_draws": row.get("filler_draws"), "shape_until": row.get("shape_until")},
                         diffs, "trained with ")


def _compare_shaping(expected: dict, recorded: dict, diffs: Differences, prefix: str) -> None:
    """The shaping a row records against the eight settings an arm names: the compass by its path (a label of an
    older row is compared by the arm's identity), each other setting when recorded and read by the policy."""
    compass = recorded.get("compass")
    if compass not in COMPASS_LABELS:
        diffs.compare(prefix + "compass", compass, expected["compass"])
    diffs.compare(prefix + "num_candidates", recorded.get("num_candidates"), expected["num_candidates"])
    diffs.compare(prefix + "policy", recorded.get("policy"), expected["policy"])
    if expected["policy"] == "boltzmann":
        diffs.compare(prefix + "selection_temperature", recorded.get("selection_temperature"),
                      expected["selection_temperature"])
    if expected["policy"] == "sequence_to_token":
        diffs.compare(prefix + "switch_time", recorded.get("switch_time"), expected["switch_time"])
    diffs.compare(prefix + "shape_from", recorded.get("shape_from"), expected["shape_from"])
    diffs.compare(prefix + "filler_draws", recorded.get("filler_draws"), expected["filler_draws"])
    diffs.compare(prefix + "shape_until", recorded.get("shape_until"), expected["shape_until"])


def _step_sizes(text: str | None) -> list[float] | None:
    if text is None:
        return None
    from lightning_tsdfm.sampling import parse_step_sizes

    return parse_step_sizes(text)


def _same_grid(recorded: list[float], expected: list[float] | None) -> bool:
    return expected is not None and len(recorded) == len(expected) and all(
        math.isclose(a, b) for a, b in zip(recorded, expected))


def archive(registry: Registry, dry_run: bool = False) -> dict[str, Counter]:
    """Move every row that no longer follows from ``registry`` out of the results files (re-read under each file's
    lock) and append it, with its ``archive_reason``, to ``archive/<benchmark>.jsonl``. Returns, per benchmark, the
    rows moved by reason; ``dry_run`` moves nothing."""
    moved: dict[str, Counter] = {}
    for path in sorted(results_io.RESULTS.glob("*.jsonl")):
        benchmark = path.stem
        arms = [arm for arm in registry.arms.values() if arm.benchmark == benchmark]
        with results_io.locked(benchmark):
            rows = read_rows(benchmark)
            why = reasons(rows, arms, registry)
            leaving = [{**row, "archive_reason": reason} for row, reason in zip(rows, why) if reason]
            if not leaving:
                continue
            moved[benchmark] = Counter(_kind(reason) for reason in why if reason)
            if dry_run:
                continue
            write_rows(results_io.RESULTS / ARCHIVE / f"{benchmark}.jsonl", read_rows(f"{ARCHIVE}/{benchmark}") + leaving)
            write_rows(path, [row for row, reason in zip(rows, why) if not reason])
    return moved


def _kind(reason: str) -> str:
    """A reason without its row's particulars, to count by."""
    if reason.startswith("measured from a tree"):
        return "measured from a tree with uncommitted changes"
    if reason.startswith("interpolated"):
        return reason
    return reason.split(":", 1)[0]

