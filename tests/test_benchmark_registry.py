"""benchmarks/registry: every arm names every setting its rows depend on, and the commands pass each one."""

from __future__ import annotations

import pytest
from lightning_helpers import BENCHMARKS

from lightning_tsdfm.shaping.settings import ShapingSettings

pytestmark = pytest.mark.usefixtures("benchmarks_on_path")


@pytest.fixture
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.fixture(scope="module")
def registry():
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    import arms

    return arms.load()


def test_every_arm_names_every_setting_and_every_training_config_exists(registry):
    import arms

    assert len(registry.arms) >= 100 and len(registry.trainings) >= 80
    for training in registry.trainings.values():
        assert (arms.ROOT / training.config).exists(), training.name
        if training.shaping is not None:
            assert set(training.shaping) == arms.SHAPING and None not in training.shaping.values(), training.name
            ShapingSettings(**training.shaping)
    for arm in registry.arms.values():
        assert arm.stages, arm.full_name
        for run in arm.needs():  # the model, energies and judges it reads are trained by the registry
            assert (arms.ROOT / registry.trainings[run].config).exists(), (arm.full_name, run)
        if arm.script == "quality":
            spec = arm.spec
            assert spec["model"]["checkpoint"] == "oracle" or registry.training_of(spec["model"]["checkpoint"]), arm.name
            assert None not in (spec["sampling"]["sampler"], spec["judging"]["num_samples"], spec["judging"]["seed"])
            guide = spec["sampling_shaping"]
            if guide is not None:
                assert set(guide) == arms.SHAPING and None not in guide.values(), arm.full_name
                ShapingSettings(**guide)


def test_the_compass_and_textlike_stages_are_transcribed(registry):
    stages = set(registry.stages())
    for stage in ("cost-quality", "instrument", "causal-lm", "causal-lm-small", "distilled", "fillers"):
        assert f"reproduce_compass.sh {stage}" in stages
    for stage in ("teachers", "students", "quality", "frontier"):
        assert f"reproduce_textlike.sh {stage}" in stages
    cost = [a for a in registry.arms.values() if "reproduce_compass.sh cost-quality" in a.stages]
    assert len(cost) == 8 and {a.benchmark for a in cost} == {"cost_quality"}
    assert registry.arms["compasses/textlike-8-step"].spec["compasses"]["causal-lm"].startswith("ar:runs/")


def test_a_missing_or_unknown_key_or_a_key_given_twice_is_refused(tmp_path):
    import arms

    source = (arms.REGISTRY / "conditional.yaml").read_text()
    (tmp_path / "trainings.yaml").write_text((arms.REGISTRY / "trainings.yaml").read_text())
    broken = tmp_path / "conditional.yaml"
    broken.write_text(source.replace("temperatures: [1.0], ", "", 1))
    with pytest.raises(arms.RegistryError, match=r"missing \['temperatures'\]"):
        arms.load(tmp_path)
    broken.write_text(source.replace("temperatures: [1.0], ", "temperatures: [1.0], top_p: 0.9, ", 1))
    with pytest.raises(arms.RegistryError, match=r"unknown \['top_p'\]"):
        arms.load(tmp_path)
    broken.write_text(source.replace("temperatures: [1.0], ", "temperatures: [1.0], temperatures: [0.5], ", 1))
    with pytest.raises(arms.RegistryError, match="given twice"):
        arms.load(tmp_path)
    broken.write_text(source.replace("compare_with: [conditional/teacher-1024]", "compare_with: [teacher-1024]", 1))
    with pytest.raises(arms.RegistryError, match="compared with 'teacher-1024'"):
        arms.load(tmp_path)


def test_a_guided_arms_command_passes_all_seven_settings_back_to_quality_py(registry):
    import commands
    import quality

    programs = commands.Programs("python", "tsdfm")
    arm = registry.arms["cost_quality/student-guided-smalllm-is4-m4"]
    command = commands.measure_command(arm, programs)
    method, source, steps, checkpoint, sampler, shaping = quality.parse_model(command[command.index("--model") + 1])
    assert (method, source, steps, sampler) == ("student-guided-smalllm-is4-m4", "mask", [8], "ancestral")
    assert checkpoint == arm.spec["model"]["checkpoint"] and shaping == arm.spec["sampling_shaping"]
    assert command[command.index("--temperatures") + 1] == "0.5,0.6,0.7,0.8" and "--frontier" in command
    assert "--keep-other-models" in command  # one call per arm keeps the other arms' rows


def test_a_shaped_training_names_its_seven_settings_and_resumes_from_its_own_checkpoint(registry):
    import commands

    programs = commands.Programs("python", "tsdfm")
    added = registry.trainings["textlike_endpoint_averaged_is16_student_mask_1500"]
    command = commands.fit_command(added, programs, resume=True)
    assert "--trainer.callbacks+=TrajectoryShaper" in command
    assert sum(a.startswith("--trainer.callbacks.") for a in command) == 7
    assert command[-2:] == ["--ckpt_path=runs/textlike_endpoint_averaged_is16_student_mask/checkpoints/last.ckpt",
                            "--ckpt_path=runs/textlike_endpoint_averaged_is16_student_mask_1500/checkpoints/last.ckpt"]
    own = registry.trainings["synthetic_shaped_student_mask"]  # its config lists the shaper: no second one is added
    command = commands.fit_command(own, programs, resume=False)
    assert "--trainer.callbacks+=TrajectoryShaper" not in command and "--trainer.callbacks.num_candidates=16" in command
    assert not any(a.startswith("--ckpt_path") for a in command)
