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


def test_a_guided_arms_command_passes_all_eight_settings_back_to_quality_py(registry):
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


def test_a_shaped_training_names_its_eight_settings_and_resumes_from_its_own_checkpoint(registry):
    import commands

    programs = commands.Programs("python", "tsdfm")
    added = registry.trainings["textlike_endpoint_averaged_is16_student_mask_1500"]
    command = commands.fit_command(added, programs, resume=True)
    assert "--trainer.callbacks+=TrajectoryShaper" in command
    assert sum(a.startswith("--trainer.callbacks.") for a in command) == 8
    assert command[-2:] == ["--ckpt_path=runs/textlike_endpoint_averaged_is16_student_mask/checkpoints/last.ckpt",
                            "--ckpt_path=runs/textlike_endpoint_averaged_is16_student_mask_1500/checkpoints/last.ckpt"]
    own = registry.trainings["synthetic_shaped_student_mask"]  # its config lists the shaper: no second one is added
    command = commands.fit_command(own, programs, resume=False)
    assert "--trainer.callbacks+=TrajectoryShaper" not in command and "--trainer.callbacks.num_candidates=16" in command
    assert not any(a.startswith("--ckpt_path") for a in command)


def test_make_demos_runs_are_trainings_in_its_own_run_directories(registry):
    """demo/NAME is runs/demo/NAME: the directory make demo (and the config) writes, trained with the Makefile's
    settings, so the corpus arms read make demo's checkpoints and run.py trains only what is missing."""
    import re

    import arms
    import commands

    programs = commands.Programs("python", "tsdfm")
    demo = {name: t for name, t in registry.trainings.items() if name.startswith("demo/")}
    assert set(demo) == {"demo/teacher", "demo/student_blind", "demo/causal_lm", "demo/path_lm",
                         "demo/student_pathlm_is16"}
    for name, training in demo.items():
        command = commands.fit_command(training, programs, resume=False)
        assert f"--trainer.default_root_dir=runs/{name}" in command
        if training.shaping is None:  # the shaped student's directory is the stage's, its config is the blind one's
            assert training.config_values()["trainer"]["default_root_dir"] == training.run_dir, name
        assert registry.training_of(training.last_checkpoint) is training
    makefile = (arms.ROOT / "Makefile").read_text()
    budget = re.search(r"--config configs/demo_text_teacher.yaml (--trainer.max_time=\S+)", makefile).group(1)
    assert demo["demo/teacher"].overrides == (budget,)
    assert demo["demo/student_pathlm_is16"].needs() == ["demo/teacher", "demo/path_lm"]
    assert registry.arms["cost_quality/demo-student-guided-lm-is16"].needs() == ["demo/student_blind", "demo/causal_lm"]
    assert arms.RUN_CHECKPOINT.findall("ar:runs/textlike_causal_lm/checkpoints/last.ckpt") == ["textlike_causal_lm"]


def test_the_corpus_stages_measure_the_rows_their_claims_read(registry):
    import commands
    import quality

    stages = [f"reproduce_compass.sh {stage}" for stage in ("corpus", "corpus-path-lm", "corpus-path-lm-distilled")]
    methods = {stage: sorted(a.spec["model"]["method"] for a in registry.arms.values() if stage in a.stages)
               for stage in stages}
    assert methods == {
        "reproduce_compass.sh corpus": ["student-blind", "student-guided-lm-is16", "student-guided-lm-is4", "teacher",
                                        "teacher"],
        "reproduce_compass.sh corpus-path-lm": ["student-guided-pathlm-is16", "student-guided-pathlm-is4"],
        "reproduce_compass.sh corpus-path-lm-distilled": ["student-shaped-pathlm-is16"]}
    arm = registry.arms["cost_quality/demo-student-guided-pathlm-is16"]
    command = commands.measure_command(arm, commands.Programs("python", "tsdfm"))
    assert command[command.index("--judges") + 1] == "smollm2" and command[command.index("--dataset") + 1] == "web-bible"
    *_, checkpoint, sampler, shaping = quality.parse_model(command[command.index("--model") + 1])
    assert (checkpoint, sampler) == ("runs/demo/student_blind/checkpoints/last.ckpt", "ancestral")
    assert shaping == arm.spec["sampling_shaping"] and shaping["compass"] == "runs/demo/path_lm/checkpoints/last.ckpt"


def test_a_run_name_deeper_than_one_level_is_refused(tmp_path):
    import arms

    (tmp_path / "trainings.yaml").write_text("demo/teacher/again:\n  config: configs/demo_text_teacher.yaml\n"
                                             "  overrides: []\n  start_from: null\n  shaping: null\n  stages: [s]\n")
    with pytest.raises(arms.RegistryError, match="one level deeper"):
        arms.load(tmp_path)
    (tmp_path / "trainings.yaml").write_text((tmp_path / "trainings.yaml").read_text().replace("/again", ""))
    assert list(arms.load(tmp_path).trainings) == ["demo/teacher"]


def test_the_corpus_peers_get_our_corpus_models_budgets_and_are_judged_as_our_corpus_student(registry):
    """reproduce_baselines.sh corpus: MDLM, SEDD absorb and DUO at our corpus teacher's 912 steps, SDTT and DCD at our
    corpus student's 400 (SDTT's rounds validated and saved once each), sampled at 8 steps with each family's sampler
    of its text-like arm and judged as frontier/corpus-student-blind."""
    stage = "reproduce_baselines.sh corpus"
    trainings = {name: t for name, t in registry.trainings.items() if stage in t.stages}
    assert {name: t.fixed_steps() for name, t in trainings.items()} == {
        "corpus_mdlm": 912, "corpus_sdtt_blind": 400, "corpus_sedd_absorb": 912, "corpus_duo": 912,
        "corpus_duo_dcd": 400}
    sdtt = trainings["corpus_sdtt_blind"]
    assert sdtt.needs() == ["corpus_mdlm"] and trainings["corpus_duo_dcd"].needs() == ["corpus_duo"]
    per_round = sdtt.setting("model.init_args.steps_per_round")
    assert per_round * sdtt.setting("model.init_args.num_rounds") == 400
    assert per_round % sdtt.setting("trainer.val_check_interval") == 0
    assert per_round % sdtt.setting("trainer.callbacks.every_n_train_steps") == 0
    # --trainer.callbacks.NAME=VALUE sets the config's last callback: the checkpoint's every_n_train_steps
    assert sdtt.config_values()["trainer"]["callbacks"][-1]["class_path"].endswith("FinalCheckpoint")
    arms = [a for a in registry.arms.values() if stage in a.stages]
    assert sorted(a.name for a in arms) == ["corpus-duo-8", "corpus-duo-dcd-8", "corpus-mdlm-8", "corpus-sdtt-blind-8",
                                            "corpus-sedd-absorb-8"]
    textlike = {a.spec["model"]["method"]: a.spec for a in registry.arms.values()
                if {"reproduce_baselines.sh textlike", "reproduce_baselines.sh duo"} & set(a.stages)
                and a.spec["judging"]["dataset"] == "synthetic-textlike"}
    blind = registry.arms["frontier/corpus-student-blind"].spec
    for arm in arms:
        spec = arm.spec
        assert registry.training_of(spec["model"]["checkpoint"]).name in trainings, arm.name
        assert spec["judging"] == blind["judging"] and spec["sampling"]["steps"] == [8], arm.name
        twin = textlike[spec["model"]["method"]]
        assert (spec["model"]["source"], spec["sampling"]["sampler"]) == (twin["model"]["source"],
                                                                          twin["sampling"]["sampler"]), arm.name
        assert arm.compare_with[:2] == ("frontier/corpus-student-blind", "frontier/corpus-teacher-1024"), arm.name
