"""TrajectoryShaper on a real student: a flat compass or K = 1 is blind distillation bit for bit, shaping
changes the run and logs its statistics, the compass stays out of the student, resume is exact, and every
mismatch is a clear error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import get_type_hints

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import (
    CompassModule,
    StudentModule,
    SyntheticDataModule,
    TeacherModule,
    TransformerConfig,
)
from lightning_tsdfm.cli import main
from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.samples_io import generate_samples, read_jsonl
from lightning_tsdfm.seeding import derived_generator
from lightning_tsdfm.shaping import GuidedJump, Shapeable, TrajectoryShaper, check_shapeable

VOCAB, LEN, BATCHES_PER_EPOCH = 8, 8, 2
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)
SMALL = TransformerConfig(hidden_size=8, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=8)


def _datamodule(**overrides) -> SyntheticDataModule:
    kwargs = dict(vocab_size=VOCAB, num_states=4, seq_len=LEN, num_train=4 * BATCHES_PER_EPOCH, num_val=4, batch_size=4)
    kwargs.update(overrides)
    return SyntheticDataModule(**kwargs)


def _fit_checkpoint(module, root, steps: int = 2, datamodule=None) -> Path:
    return fit_checkpoint(module, root, steps, datamodule or _datamodule())


@pytest.fixture(scope="module")
def teacher_ckpt(source, tmp_path_factory):
    torch.manual_seed(0)
    teacher = TeacherModule(VOCAB, LEN, source=source, backbone=BACKBONE, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    return _fit_checkpoint(teacher, tmp_path_factory.mktemp(f"teacher_{source}"), steps=3)


def _compass_ckpt(teacher_ckpt, root, flat: bool = False):
    torch.manual_seed(0)
    compass = CompassModule(str(teacher_ckpt), VOCAB, LEN, backbone=SMALL, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    trainer = quick_trainer(root, 2)
    trainer.fit(compass, datamodule=_datamodule())
    if flat:  # a compass with no opinion: every state has energy 0
        with torch.no_grad():
            compass.net.head.weight.zero_()
            compass.net.head.bias.zero_()
    trainer.save_checkpoint(root / "compass.ckpt")
    return root / "compass.ckpt"


@pytest.fixture(scope="module")
def compass_ckpt(teacher_ckpt, tmp_path_factory):
    return _compass_ckpt(teacher_ckpt, tmp_path_factory.mktemp("compass"))


@pytest.fixture(scope="module")
def flat_compass_ckpt(teacher_ckpt, tmp_path_factory):
    return _compass_ckpt(teacher_ckpt, tmp_path_factory.mktemp("flat_compass"), flat=True)


def _student(teacher_ckpt, trajectory: str = "heun") -> StudentModule:
    torch.manual_seed(0)
    return StudentModule(str(teacher_ckpt), VOCAB, LEN, trajectory=trajectory, teacher_steps=8, base_fraction=0.25,
                         ema_decay=0.5, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))


def _distil(teacher_ckpt, root, steps: int = 3, shaper=None) -> StudentModule:
    student = _student(teacher_ckpt)
    quick_trainer(root, steps, [shaper] if shaper else []).fit(student, datamodule=_datamodule())
    return student


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_flat_compass_or_one_candidate_is_blind_distillation(teacher_ckpt, compass_ckpt, flat_compass_ckpt, tmp_path):
    blind = _distil(teacher_ckpt, tmp_path / "blind")
    flat = _distil(teacher_ckpt, tmp_path / "flat", shaper=TrajectoryShaper(str(flat_compass_ckpt), num_candidates=4))
    single = _distil(teacher_ckpt, tmp_path / "single", shaper=TrajectoryShaper(str(compass_ckpt), num_candidates=1))
    never = _distil(teacher_ckpt, tmp_path / "never", shaper=TrajectoryShaper(str(compass_ckpt), shape_from=1.0))
    assert _same_weights(blind, flat)
    assert _same_weights(blind, single)
    assert _same_weights(blind, never)  # every jump starts before t = 1: none is shaped


@pytest.mark.parametrize("policy", ["argmin", "boltzmann", "sequence_to_token"])
def test_shaping_changes_the_targets_and_logs_statistics(teacher_ckpt, compass_ckpt, policy, tmp_path):
    shaper = TrajectoryShaper(str(compass_ckpt), num_candidates=4, policy=policy, selection_temperature=0.05, switch_time=0.5)
    student = _student(teacher_ckpt)
    trainer = quick_trainer(tmp_path, 3, [shaper])
    trainer.fit(student, datamodule=_datamodule())
    assert not _same_weights(student, _distil(teacher_ckpt, tmp_path / "blind"))
    metrics = trainer.callback_metrics
    if policy != "boltzmann":  # a Boltzmann draw may keep a worse-than-average candidate
        assert metrics["shaping/energy_chosen"] <= metrics["shaping/energy_candidates"] + 1e-6
    assert 0.0 < metrics["shaping/changed_fraction"] <= 1.0
    assert isinstance(student.jump_policy, BlindJump)  # teardown gave the blind jump back
    assert not any("compass" in key for key in student.state_dict())


def test_the_averaged_endpoint_target_trains_under_shaping_and_differs_from_keeping_one(teacher_ckpt, compass_ckpt,
                                                                                       source, tmp_path):
    if source != "mask":  # a signed target where tokens may jump: refused
        with pytest.raises(ValueError, match="needs a mask-source teacher"):
            _student(teacher_ckpt, "endpoint_averaged")
        return
    students = {}
    for trajectory in ("endpoint", "endpoint_averaged"):
        shaper = TrajectoryShaper(str(compass_ckpt), num_candidates=4, policy="boltzmann", seed=3)
        students[trajectory] = _student(teacher_ckpt, trajectory)
        quick_trainer(tmp_path / trajectory, 3, [shaper]).fit(students[trajectory], datamodule=_datamodule())
    assert all(torch.isfinite(p).all() for p in students["endpoint_averaged"].parameters())
    assert not _same_weights(students["endpoint"], students["endpoint_averaged"])


def test_compass_stays_out_of_the_student_checkpoint(teacher_ckpt, compass_ckpt, tmp_path):
    ckpt = _fit_checkpoint(_student(teacher_ckpt), tmp_path, steps=2)
    shaped = _student(teacher_ckpt)
    quick_trainer(tmp_path / "s", 2, [TrajectoryShaper(str(compass_ckpt)), ModelCheckpoint(dirpath=tmp_path / "s", save_last=True)]).fit(
        shaped, datamodule=_datamodule())
    blind_keys = set(torch.load(ckpt, weights_only=False)["state_dict"])
    assert set(torch.load(tmp_path / "s" / "last.ckpt", weights_only=False)["state_dict"]) == blind_keys


def test_resumed_shaped_run_ends_with_the_same_weights(teacher_ckpt, compass_ckpt, tmp_path):
    def shaper():
        return TrajectoryShaper(str(compass_ckpt), num_candidates=3, policy="boltzmann", selection_temperature=0.1, seed=5)

    straight = _distil(teacher_ckpt, tmp_path / "a", steps=2 * BATCHES_PER_EPOCH, shaper=shaper())
    saver = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=BATCHES_PER_EPOCH, save_top_k=-1, filename="{step}")
    quick_trainer(tmp_path / "b", BATCHES_PER_EPOCH, [shaper(), saver]).fit(_student(teacher_ckpt), datamodule=_datamodule())
    resumed = _student(teacher_ckpt)
    quick_trainer(tmp_path / "c", 2 * BATCHES_PER_EPOCH, [shaper()]).fit(
        resumed, datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / f"step={BATCHES_PER_EPOCH}.ckpt")
    assert _same_weights(straight, resumed)


def test_a_resumed_run_refuses_a_replaced_compass(teacher_ckpt, compass_ckpt, tmp_path):
    compass = tmp_path / "compass.ckpt"
    compass.write_bytes(compass_ckpt.read_bytes())
    saver = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=1, save_top_k=-1, filename="{step}")
    quick_trainer(tmp_path / "a", 1, [TrajectoryShaper(str(compass), num_candidates=2), saver]).fit(
        _student(teacher_ckpt), datamodule=_datamodule())
    state = torch.load(compass_ckpt, weights_only=False)
    state["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    torch.save(state, compass)  # the file under the same name now holds other weights
    with pytest.raises(UserError, match="weights differ"):
        quick_trainer(tmp_path / "b", 2, [TrajectoryShaper(str(compass), num_candidates=2)]).fit(
            _student(teacher_ckpt), datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / "step=1.ckpt")


class CandidateSeeds(L.Callback):
    """The seed of the shaper's candidate generator in every training batch (runs after the shaper's hooks)."""

    def __init__(self, shaper: TrajectoryShaper):
        self.shaper, self.seeds = shaper, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seeds.append(self.shaper.jump.generator.initial_seed())


def test_accumulated_micro_batches_draw_their_own_candidates(teacher_ckpt, compass_ckpt, tmp_path):
    """With accumulate_grad_batches = 2 each micro-batch of an optimizer step has its own candidate stream; the first
    is the stream of (seed, step, rank), as without accumulation."""
    shaper = TrajectoryShaper(str(compass_ckpt), num_candidates=2, seed=5)
    recorder = CandidateSeeds(shaper)
    trainer = L.Trainer(max_steps=2, accumulate_grad_batches=2, default_root_dir=tmp_path, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        callbacks=[shaper, recorder], deterministic=True, num_sanity_val_steps=0)
    trainer.fit(_student(teacher_ckpt), datamodule=_datamodule())
    assert len(recorder.seeds) == 4 and len(set(recorder.seeds)) == 4
    assert recorder.seeds[0::2] == [derived_generator(5 + 7_919, step).initial_seed() for step in range(2)]


def test_a_resumed_run_with_other_shaping_settings_is_refused(teacher_ckpt, compass_ckpt, tmp_path):
    """The checkpoint records the shaping settings; resuming it with others (here the command line's defaults) is
    refused, naming each setting that differs."""
    saver = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    quick_trainer(tmp_path / "a", 1, [TrajectoryShaper(str(compass_ckpt), num_candidates=3, policy="argmin"), saver]).fit(
        _student(teacher_ckpt), datamodule=_datamodule())
    with pytest.raises(UserError, match=r"shaped with other settings than this run's TrajectoryShaper \(num_candidates: "
                                        r"3 -> 16; policy: 'argmin' -> 'boltzmann'; selection_temperature: None -> 1.0; "
                                        r"checkpoint -> this run\)\. Resume with the checkpoint's settings"):
        quick_trainer(tmp_path / "b", 2, [TrajectoryShaper(str(compass_ckpt))]).fit(
            _student(teacher_ckpt), datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / "last.ckpt")


# ---- clear errors

class NotShapeable(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)


def test_module_without_the_seam_is_a_clear_error(compass_ckpt):
    with pytest.raises(TypeError, match="jump_policy.*path.*vocab_size"):
        TrajectoryShaper(str(compass_ckpt)).setup(None, NotShapeable(), "fit")


def test_check_shapeable_checks_the_shapeable_protocol(teacher_ckpt):
    """The refusal names every attribute the Shapeable protocol declares; a module that passes is a Shapeable."""
    with pytest.raises(TypeError) as info:
        check_shapeable(NotShapeable())
    assert all(f"`{name}`" in str(info.value) for name in get_type_hints(Shapeable))
    student = _student(teacher_ckpt)
    check_shapeable(student)
    assert isinstance(student, Shapeable)


def test_compass_of_another_vocabulary_or_source_is_refused(teacher_ckpt, source, tmp_path):
    other_source = "uniform" if source == "mask" else "mask"
    torch.manual_seed(0)
    other_teacher = _fit_checkpoint(TeacherModule(VOCAB, LEN, source=other_source, backbone=BACKBONE), tmp_path / "t", 1)
    with pytest.raises(ValueError, match="source"):
        TrajectoryShaper(str(_compass_ckpt(other_teacher, tmp_path / "c"))).setup(None, _student(teacher_ckpt), "fit")

    wide_data = dict(vocab_size=VOCAB + 4)
    wide_teacher = _fit_checkpoint(TeacherModule(VOCAB + 4, LEN, source=source, backbone=BACKBONE), tmp_path / "w", 1,
                                   datamodule=_datamodule(**wide_data))
    torch.manual_seed(0)
    wide = CompassModule(str(wide_teacher), VOCAB + 4, LEN, backbone=SMALL)
    wide_ckpt = _fit_checkpoint(wide, tmp_path / "wc", 1, datamodule=_datamodule(**wide_data))
    with pytest.raises(ValueError, match="vocab_size=12"):
        TrajectoryShaper(str(wide_ckpt)).setup(None, _student(teacher_ckpt), "fit")


def test_a_teacher_checkpoint_is_not_a_compass(teacher_ckpt):
    with pytest.raises(ValueError, match="'teacher' checkpoint.*'compass'"):
        TrajectoryShaper(str(teacher_ckpt)).setup(None, _student(teacher_ckpt), "fit")


class PolicyRecorder(L.Callback):
    """The module's jump policy in every training and validation batch (runs after the shaper's hooks)."""

    def __init__(self):
        self.seen = {"train": set(), "validation": set()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen["train"].add(type(pl_module.jump_policy))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.seen["validation"].add(type(pl_module.jump_policy))


def test_only_training_batches_are_shaped(teacher_ckpt, compass_ckpt, tmp_path):
    student, recorder = _student(teacher_ckpt), PolicyRecorder()
    shaper = TrajectoryShaper(str(compass_ckpt), num_candidates=2)
    shaper.setup(None, student, "fit")
    assert isinstance(student.jump_policy, BlindJump)  # setup loads the compass, installs nothing
    trainer = quick_trainer(tmp_path, 3, [shaper, recorder], val_batches=1)  # validates after epoch 1 of 2
    trainer.fit(student, datamodule=_datamodule())
    assert recorder.seen["train"] == {GuidedJump}
    assert recorder.seen["validation"] == {BlindJump}
    assert isinstance(student.jump_policy, BlindJump)


def test_a_module_that_makes_no_jumps_is_refused(teacher_ckpt, compass_ckpt, tmp_path):
    teacher = TeacherModule(VOCAB, LEN, source=torch.load(teacher_ckpt, weights_only=False)["hyper_parameters"]["source"],
                            backbone=BACKBONE)
    with pytest.raises(UserError, match="made no jump.*nothing to shape"):
        quick_trainer(tmp_path, 2, [TrajectoryShaper(str(compass_ckpt))]).fit(teacher, datamodule=_datamodule())
    assert isinstance(teacher.jump_policy, BlindJump)


def test_validates_its_settings(compass_ckpt):
    with pytest.raises(ValueError, match="num_candidates"):
        TrajectoryShaper(str(compass_ckpt), num_candidates=0)
    with pytest.raises(ValueError, match="Unknown selection policy"):
        TrajectoryShaper(str(compass_ckpt), policy="best")


# ---- the command line

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_cli_shapes_a_student_config_with_callbacks_plus(teacher_ckpt, compass_ckpt, tmp_path, monkeypatch):
    """`tsdfm fit --config configs/synthetic_student.yaml --trainer.callbacks+=TrajectoryShaper --trainer.callbacks.compass=...`"""
    config = read_config(CONFIGS / "synthetic_student.yaml")
    checkpoint, monitor = config["trainer"]["callbacks"]
    checkpoint["init_args"]["dirpath"] = str(tmp_path / "checkpoints")
    monitor["init_args"].update(num_samples=2, steps=2)
    config["trainer"].update(accelerator="cpu", enable_progress_bar=False, default_root_dir=str(tmp_path))
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp_path)
    config["model"]["init_args"].update(teacher_checkpoint=str(teacher_ckpt), teacher_steps=8)
    config["data"]["init_args"] = {"vocab_size": VOCAB, "num_states": 4, "seq_len": LEN, "num_train": 8, "num_val": 4, "batch_size": 4}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(["fit", "--config", str(path), "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1",
          "--trainer.callbacks+=TrajectoryShaper", f"--trainer.callbacks.compass={compass_ckpt}",
          "--trainer.callbacks.num_candidates=2", "--trainer.callbacks.policy=boltzmann"])
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    shaping = next(v for k, v in saved["callbacks"].items() if k.startswith("TrajectoryShaper"))
    assert shaping["num_candidates"] == 2 and shaping["policy"] == "boltzmann" and shaping["compass"] == str(compass_ckpt)
    assert not any("compass" in key for key in saved["state_dict"])


def test_shaped_sampling_with_a_flat_compass_is_blind_sampling(teacher_ckpt, compass_ckpt, flat_compass_ckpt, tmp_path):
    blind = generate_samples(teacher_ckpt, 4, 16, seed=3, progress=False)
    flat = generate_samples(teacher_ckpt, 4, 16, seed=3, progress=False, shaping={"compass": str(flat_compass_ckpt), "num_candidates": 4})
    shaped = generate_samples(teacher_ckpt, 4, 16, seed=3, progress=False, shaping={"compass": str(compass_ckpt), "num_candidates": 4})
    late = generate_samples(teacher_ckpt, 4, 16, seed=3, progress=False,
                            shaping={"compass": str(compass_ckpt), "num_candidates": 4, "shape_from": 0.5})
    never = generate_samples(teacher_ckpt, 4, 16, seed=3, progress=False,
                             shaping={"compass": str(compass_ckpt), "num_candidates": 4, "shape_from": 1.0})
    assert torch.equal(blind.tokens, flat.tokens) and torch.equal(blind.tokens, never.tokens)
    assert not torch.equal(late.tokens, shaped.tokens)
    assert not torch.equal(blind.tokens, shaped.tokens)
    assert shaped.meta["sampling_shaping"]["num_candidates"] == 4 and blind.meta["sampling_shaping"] is None
    out = tmp_path / "s.jsonl"
    main(["sample", "--checkpoint", str(teacher_ckpt), "--output", str(out), "--steps", "4", "--num_samples", "4",
          "--shaped", str(compass_ckpt), "--k", "2", "--policy", "boltzmann", "--selection_temperature", "0.5", "--shape_from", "0.25",
          "--shape_until", "0.75"])
    assert read_jsonl(out).meta["sampling_shaping"] == {"compass": str(compass_ckpt), "num_candidates": 2, "policy": "boltzmann",
                                                        "selection_temperature": 0.5, "switch_time": None, "shape_from": 0.25,
                                                        "filler_draws": None, "shape_until": 0.75, "compass_kind": "nce"}
    # boltzmann reads no switch time, a state compass no filler draws


def test_the_shaper_and_the_seam_are_exported_where_users_look():
    import lightning_tsdfm
    from lightning_tsdfm.callbacks import TrajectoryShaper as FromCallbacks

    assert FromCallbacks is TrajectoryShaper is lightning_tsdfm.TrajectoryShaper
    assert {"DenoiserModule", "GuidedJump", "Shapeable", "JumpPolicy"} <= set(lightning_tsdfm.__all__)
