"""The benchmark registry: every training run and every measured arm, read from benchmarks/registry/*.yaml.

``trainings.yaml`` names each training run (``runs/NAME``, NAME at most one level deep: ``demo/teacher``) by its
config, overrides, the checkpoint it starts from and its shaping (all eight :class:`ShapingSettings`, or null: blind).
Every other file is one benchmark, the rows of ``benchmarks/results/<file stem>.jsonl``: the script that writes them
and its arms. An arm names everything its rows depend on (the model and its checkpoint, every sampling setting, the
judges, sample count and seed), the arms it is compared with and the reproduce_*.sh stages that measure it. A missing
or unknown key is refused when the registry is read: nothing is left to a default that may change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import yaml

from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.shaping.settings import ShapingSettings

REGISTRY = Path(__file__).parent / "registry"
ROOT = Path(__file__).resolve().parents[1]
TRAININGS = "trainings.yaml"
#: the eight settings every shaping in the registry names
SHAPING = frozenset(f.name for f in fields(ShapingSettings))
#: a training run's name: its directory under runs/, at most one level deep (demo/teacher: make demo's own runs)
RUN_NAME = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)?")
#: a checkpoint of a training run: runs/NAME/checkpoints/FILE (also after ar: in an energy's name)
RUN_CHECKPOINT = re.compile(rf"runs/({RUN_NAME.pattern})/checkpoints/")
#: checkpoint or energy names that are not files of a run
NOT_A_RUN = frozenset({"oracle", "oracle-sequence", "random", "smollm2"})

#: what a shaping key holds: null or the eight settings
SHAPING_OR_NULL = "shaping"
#: the keys of an arm of each script: a set of keys is a mapping with exactly those keys (each a leaf), a dict maps a
#: key to its own schema, [schema] is a list of such, SHAPING_OR_NULL is null or a shaping, None any value
ARM_KEYS = {
    "quality": {"model": {"method", "source", "checkpoint"},
                "sampling": {"sampler", "steps", "temperatures", "step_sizes", "batch_size"},
                "sampling_shaping": SHAPING_OR_NULL,
                "judging": {"dataset", "data_config", "judges", "num_samples", "seed", "frontier", "samples_dir"}},
    "compasses": {"instrument": {"teacher", "num_states", "k", "steps", "seed", "filler_draws", "jump_sizes"},
                  "compasses": None},
    "speed": {"timing": {"dataset", "batch_size", "repeats", "seed", "device"},
              "models": [{"method", "source", "steps", "sampler", "checkpoint"}]},
    "conditional": {"model": {"method", "checkpoint"}, "sampling": {"sampler", "steps", "temperatures", "batch_size"},
                    "sampling_shaping": SHAPING_OR_NULL,
                    "conditions": {"dataset", "data_config", "templates", "num_conditions", "seed", "samples_dir",
                                   "judges"}},
}
COMMON_ARM_KEYS = {"name", "stages", "compare_with"}
TRAINING_KEYS = {"config", "overrides", "start_from", "shaping", "stages"}


class RegistryError(ValueError):
    """A registry file that names too little, too much, or something that does not exist."""


@dataclass(frozen=True)
class Training:
    """``tsdfm fit --config CONFIG`` in ``runs/NAME`` with ``overrides``, from ``start_from`` when given, shaped by
    ``shaping`` (the eight settings) or blind (None)."""

    name: str
    config: str
    overrides: tuple[str, ...]
    start_from: str | None
    shaping: dict | None
    stages: tuple[str, ...]

    @property
    def run_dir(self) -> str:
        return f"runs/{self.name}"

    @property
    def last_checkpoint(self) -> str:
        return f"runs/{self.name}/checkpoints/last.ckpt"

    def config_values(self) -> dict:
        """The config as ``tsdfm fit`` reads it (path-valued groups read in)."""
        return _config(self.config)

    def setting(self, dotted: str):
        """The value of ``dotted`` (e.g. ``model.init_args.trajectory``) after the overrides, None when neither the
        overrides nor the config give it."""
        for override in reversed(self.overrides):
            key, _, value = override.removeprefix("--").partition("=")
            if key == dotted:
                return None if value == "null" else yaml.safe_load(value)
        value = self.config_values()
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def config_has_shaper(self) -> bool:
        """Whether the config itself lists a TrajectoryShaper callback."""
        callbacks = (self.config_values().get("trainer") or {}).get("callbacks") or []
        return any(str(c.get("class_path", "")).endswith("TrajectoryShaper") for c in callbacks if isinstance(c, dict))

    def fixed_steps(self) -> int | None:
        """The optimizer steps the run ends at when only ``max_steps`` bounds it (no ``max_time``), else None."""
        steps, budget = self.setting("trainer.max_steps"), self.setting("trainer.max_time")
        return int(steps) if budget is None and steps is not None and int(steps) > 0 else None

    def needs(self) -> list[str]:
        """The runs whose checkpoints this one reads: in its overrides, start_from, shaping and, unless overridden,
        its config's teacher checkpoint."""
        texts = [*self.overrides, self.start_from or "", (self.shaping or {}).get("compass", "")]
        texts.append(str(self.setting("model.init_args.teacher_checkpoint") or ""))
        return list(dict.fromkeys(m for text in texts for m in RUN_CHECKPOINT.findall(text) if m != self.name))


@dataclass(frozen=True)
class Arm:
    """One measured model of a benchmark: ``spec`` holds the keys of its script (``ARM_KEYS[script]``)."""

    benchmark: str
    script: str
    name: str
    stages: tuple[str, ...]
    compare_with: tuple[str, ...]
    spec: dict

    @property
    def full_name(self) -> str:
        return f"{self.benchmark}/{self.name}"

    def checkpoints(self) -> list[str]:
        """Every checkpoint path of a run that the arm reads (model, energies, judges)."""
        return list(dict.fromkeys(_strings_with_runs(self.spec)))

    def needs(self) -> list[str]:
        """The training runs the arm reads."""
        return list(dict.fromkeys(m for text in self.checkpoints() for m in RUN_CHECKPOINT.findall(text)))


@dataclass(frozen=True)
class Registry:
    trainings: dict[str, Training]
    arms: dict[str, Arm]

    def benchmarks(self) -> list[str]:
        return sorted({arm.benchmark for arm in self.arms.values()})

    def stages(self) -> list[str]:
        every = [s for t in self.trainings.values() for s in t.stages] + [s for a in self.arms.values() for s in a.stages]
        return sorted(set(every))

    def training_of(self, checkpoint: str) -> Training | None:
        """The training whose run directory holds ``checkpoint``."""
        found = RUN_CHECKPOINT.search(checkpoint)
        return self.trainings.get(found.group(1)) if found else None


def load(root: Path = REGISTRY) -> Registry:
    """Read and check every registry file under ``root``."""
    trainings = {name: _training(name, spec) for name, spec in _read(root / TRAININGS).items()}
    arms: dict[str, Arm] = {}
    for path in sorted(root.glob("*.yaml")):
        if path.name == TRAININGS:
            continue
        for arm in _arms(path):
            if arm.full_name in arms:
                raise RegistryError(f"{path.name}: two arms are named {arm.name!r}.")
            arms[arm.full_name] = arm
    registry = Registry(trainings, arms)
    _check_references(registry)
    return registry


@lru_cache(maxsize=None)
def _config(path: str) -> dict:
    return read_config(ROOT / path)


def _read(path: Path) -> dict:
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        raise RegistryError(f"{path.name}: {err}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _unique_mapping(loader, node, deep=False):
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    repeated = sorted({k for k in keys if keys.count(k) > 1}, key=str)
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"keys given twice: {repeated}", node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 lambda loader, node: _unique_mapping(loader, node, deep=True))


def _training(name: str, spec: dict) -> Training:
    where = f"{TRAININGS}: {name}"
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or {".", ".."} & set(name.split("/")):
        raise RegistryError(f"{where}: a run's name is its directory under runs/: NAME or one level deeper, "
                            "PARENT/NAME, of letters, digits, _ . -.")
    _check_keys(where, spec, TRAINING_KEYS)
    _check_shaping(where + ".shaping", spec["shaping"])
    if not (ROOT / spec["config"]).exists():
        raise RegistryError(f"{where}: config {spec['config']} does not exist.")
    return Training(name, spec["config"], tuple(spec["overrides"]), spec["start_from"], spec["shaping"],
                    tuple(spec["stages"]))


def _arms(path: Path) -> list[Arm]:
    content = _read(path)
    _check_keys(path.name, content, {"benchmark", "script", "arms"})
    if content["benchmark"] != path.stem:
        raise RegistryError(f"{path.name}: benchmark {content['benchmark']!r} is not the file's name.")
    script = content["script"]
    if script not in ARM_KEYS:
        raise RegistryError(f"{path.name}: unknown script {script!r}; one of {sorted(ARM_KEYS)}.")
    arms = []
    for spec in content["arms"]:
        where = f"{path.name}: {spec.get('name', '(an arm without a name)')}"
        _check_keys(where, spec, COMMON_ARM_KEYS | set(ARM_KEYS[script]))
        _check_schema(where, {k: spec[k] for k in ARM_KEYS[script]}, ARM_KEYS[script])
        arms.append(Arm(content["benchmark"], script, spec["name"], tuple(spec["stages"]), tuple(spec["compare_with"]),
                        {k: spec[k] for k in ARM_KEYS[script]}))
    return arms


def _check_keys(where: str, value, keys: set) -> None:
    if not isinstance(value, dict):
        raise RegistryError(f"{where}: expected a mapping with {sorted(keys)}, got {value!r}.")
    missing, unknown = sorted(set(keys) - set(value)), sorted(set(value) - set(keys))
    if missing or unknown:
        raise RegistryError(f"{where}: " + "; ".join(
            part for part in (f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else "") if part)
            + " (every key is named: nothing is left to a default).")


def _check_schema(where: str, value, schema) -> None:
    if schema is None:
        return
    if schema == SHAPING_OR_NULL:
        _check_shaping(where, value)
    elif isinstance(schema, list):
        if not isinstance(value, list) or not value:
            raise RegistryError(f"{where}: expected a non-empty list.")
        for i, item in enumerate(value):
            _check_schema(f"{where}[{i}]", item, schema[0])
    elif isinstance(schema, dict):
        _check_keys(where, value, set(schema))
        for key, sub in schema.items():
            _check_schema(f"{where}.{key}", value[key], sub)
    else:
        _check_keys(where, value, schema)


def _check_shaping(where: str, value) -> None:
    """Null, or all eight settings with values ShapingSettings accepts."""
    if value is None:
        return
    _check_keys(where, value, set(SHAPING))
    try:
        ShapingSettings(**value)
    except (TypeError, ValueError) as err:
        raise RegistryError(f"{where}: {err}") from None


def _strings_with_runs(value) -> list[str]:
    if isinstance(value, str):
        return [value] if RUN_CHECKPOINT.search(value) else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_with_runs(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings_with_runs(v)]
    return []


def _check_references(registry: Registry) -> None:
    """Every run a training or an arm reads is a training of the registry; every compared arm exists."""
    for training in registry.trainings.values():
        for run in training.needs():
            if run not in registry.trainings:
                raise RegistryError(f"{TRAININGS}: {training.name} reads runs/{run}, which no training makes.")
    for arm in registry.arms.values():
        for run in arm.needs():
            if run not in registry.trainings:
                raise RegistryError(f"{arm.benchmark}.yaml: {arm.name} reads runs/{run}, which no training makes.")
        for other in arm.compare_with:
            if other not in registry.arms:
                raise RegistryError(f"{arm.benchmark}.yaml: {arm.name} is compared with {other!r}, which is no arm "
                                    "(name arms as BENCHMARK/NAME).")
