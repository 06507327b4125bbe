"""The exact command lines of the registry: ``tsdfm fit`` of a training, and the benchmark script call of an arm.

Every setting an arm or a training names is passed on the command line, so a row's ``command`` says all it depends
on: a guided model's eight shaping settings after ``@`` of quality.py's and conditional.py's ``--model``, a shaped
training's eight ``--trainer.callbacks.NAME=VALUE``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from arms import ROOT, Arm, Training

#: marks a finished run directory (the reproduce_*.sh stages wrote it too)
DONE = ".done"
#: the order the guide of quality.py and conditional.py takes the settings in: four positional, then NAME=VALUE
POSITIONAL_SHAPING = ("compass", "num_candidates", "policy", "shape_from")
NAMED_SHAPING = ("selection_temperature", "switch_time", "filler_draws", "shape_until")


@dataclass(frozen=True)
class Programs:
    """The interpreter the benchmark scripts run with and the ``tsdfm`` command, as commands name them."""

    python: str
    tsdfm: str

    @classmethod
    def of_this_interpreter(cls) -> "Programs":
        """This interpreter and the ``tsdfm`` beside it, relative to the repository root when inside it."""
        python = Path(sys.executable)
        return cls(_relative(python), _relative(python.with_name("tsdfm")))


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path, ROOT) if path.absolute().is_relative_to(ROOT) else str(path)
    except ValueError:
        return str(path)


def number(value) -> str:
    """A number as the command line gives it (1.0 stays 1.0)."""
    return str(value)


def numbers(values) -> str:
    return ",".join(number(v) for v in values)


def fit_command(training: Training, programs: Programs, resume: bool) -> list[str]:
    """``tsdfm fit`` of ``training`` in its run directory; ``resume``: continue from the run's own last.ckpt (given
    last, so it wins over a start_from checkpoint)."""
    command = [programs.tsdfm, "fit", "--overwrite", "--config", training.config,
               f"--trainer.default_root_dir={training.run_dir}", *training.overrides]
    if training.shaping is not None:
        if not training.config_has_shaper():
            command.append("--trainer.callbacks+=TrajectoryShaper")
        command += [f"--trainer.callbacks.{name}={training.shaping[name]}" for name in sorted(training.shaping)]
    if training.start_from:
        command.append(f"--ckpt_path={training.start_from}")
    if resume:
        command.append(f"--ckpt_path={training.last_checkpoint}")
    return command


def guide(shaping: dict) -> str:
    """The ``@COMPASS:K:POLICY:SHAPE_FROM:NAME=VALUE...`` of quality.py's and conditional.py's ``--model`` with every
    setting."""
    return "@" + ":".join([*(number(shaping[k]) for k in POSITIONAL_SHAPING),
                           *(f"{k}={number(shaping[k])}" for k in NAMED_SHAPING)])


def measure_command(arm: Arm, programs: Programs) -> list[str]:
    """The benchmark script call that measures ``arm`` and appends its rows."""
    return {"quality": _quality, "compasses": _compasses, "speed": _speed, "conditional": _conditional}[arm.script](
        arm, programs)


def _quality(arm: Arm, programs: Programs) -> list[str]:
    model, sampling, judging = arm.spec["model"], arm.spec["sampling"], arm.spec["judging"]
    spec = (f"{model['method']}:{model['source']}:{numbers(sampling['steps'])}:{sampling['sampler']}"
            f"={model['checkpoint']}")
    if arm.spec["sampling_shaping"] is not None:
        spec += guide(arm.spec["sampling_shaping"])
    command = [programs.python, "benchmarks/quality.py", "--benchmark", arm.benchmark, "--dataset", judging["dataset"],
               "--config", judging["data_config"], "--judges", *judging["judges"],
               "--num-samples", number(judging["num_samples"]), "--seed", number(judging["seed"]),
               "--samples-dir", judging["samples_dir"], "--keep-other-models",
               "--temperatures", numbers(sampling["temperatures"])]
    if judging["frontier"]:
        command.append("--frontier")
    if sampling["step_sizes"] is not None:
        command += ["--step-sizes", sampling["step_sizes"]]
    if sampling["batch_size"] is not None:
        command += ["--batch-size", number(sampling["batch_size"])]
    return command + ["--model", spec]


def _compasses(arm: Arm, programs: Programs) -> list[str]:
    instrument = arm.spec["instrument"]
    command = [programs.python, "benchmarks/compasses.py", "--teacher", instrument["teacher"],
               "--num-states", number(instrument["num_states"]), "--k", number(instrument["k"]),
               "--steps", number(instrument["steps"]), "--seed", number(instrument["seed"]),
               "--filler-draws", numbers(instrument["filler_draws"]), "--jump-sizes", numbers(instrument["jump_sizes"])]
    for label, energy in arm.spec["compasses"].items():
        command += ["--compass", energy if label == energy else f"{label}={energy}"]
    return command


def _speed(arm: Arm, programs: Programs) -> list[str]:
    timing = arm.spec["timing"]
    command = [programs.python, "benchmarks/speed.py", "--dataset", timing["dataset"],
               "--batch-size", number(timing["batch_size"]), "--repeats", number(timing["repeats"]),
               "--seed", number(timing["seed"]), "--device", timing["device"]]
    for model in arm.spec["models"]:
        command += ["--model", f"{model['method']}:{model['source']}:{numbers(model['steps'])}:{model['sampler']}"
                               f"={model['checkpoint']}"]
    return command


def _conditional(arm: Arm, programs: Programs) -> list[str]:
    model, sampling, conditions = arm.spec["model"], arm.spec["sampling"], arm.spec["conditions"]
    command = [programs.python, "benchmarks/conditional.py", "--dataset", conditions["dataset"],
               "--config", conditions["data_config"], "--judges", *conditions["judges"]]
    for template in conditions["templates"]:
        command += ["--template", template]
    command += ["--num-conditions", number(conditions["num_conditions"]), "--seed", number(conditions["seed"]),
                "--temperatures", numbers(sampling["temperatures"]), "--samples-dir", conditions["samples_dir"]]
    if sampling["batch_size"] is not None:
        command += ["--batch-size", number(sampling["batch_size"])]
    spec = f"{model['method']}:{numbers(sampling['steps'])}:{sampling['sampler']}={model['checkpoint']}"
    if arm.spec["sampling_shaping"] is not None:
        spec += guide(arm.spec["sampling_shaping"])
    return command + ["--model", spec]
