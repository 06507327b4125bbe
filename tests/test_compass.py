"""CompassModule: energies, negatives, NCE losses, validation per t bin, checkpoints without the teacher,
errors, a short fit that learns, and the CLI configs."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, quick_trainer, tiny_synthetic

from lightning_tsdfm import (
    CausalLMModule,
    CompassModule,
    StudentModule,
    SyntheticDataModule,
    TeacherModule,
    TransformerConfig,
)
from lightning_tsdfm.cli import main
from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.models import DiffusionTransformer
from lightning_tsdfm.modules import load_module, read_checkpoint_header
from lightning_tsdfm.modules.compass import DEFAULT_BACKBONE, LOSSES
from lightning_tsdfm.modules.optim import OptimizerConfig

VOCAB, LEN, BACKBONE = TINY_VOCAB, TINY_LEN, TINY_TEACHER
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BINS = ["val/nce_acc/t0.00-0.25", "val/nce_acc/t0.25-0.50", "val/nce_acc/t0.50-0.75", "val/nce_acc/t0.75-1.00"]


def _datamodule(**overrides) -> SyntheticDataModule:
    return tiny_synthetic(**{"num_val": 8, **overrides})


def _fit_checkpoint(module, root, steps: int = 2, datamodule=None) -> Path:
    return fit_checkpoint(module, root, steps, datamodule or _datamodule())


def _compass(teacher_ckpt, **kwargs) -> CompassModule:
    torch.manual_seed(0)
    return CompassModule(str(teacher_ckpt), VOCAB, LEN, backbone=BACKBONE, **kwargs)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _states(compass: CompassModule, batch: int, seed: int = 0) -> torch.Tensor:
    """Any states of the compass's input vocabulary (the mask id included for the mask source)."""
    return torch.randint(0, compass.path.source.input_vocab_size, (batch, LEN), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- the energy


def test_energies_are_per_token_and_energy_is_their_mean(teacher_ckpt):
    compass = _compass(teacher_ckpt)
    x, t = _states(compass, 5), torch.rand(5)
    e = compass.energies(x, t)
    assert e.shape == (5, LEN) and torch.isfinite(e).all()
    assert e.std() > 0  # the size-1 head is N(0, 0.02)-initialised, not zero: energies depend on the tokens
    assert torch.allclose(compass.energy(x, t), e.mean(-1))
    assert torch.equal(compass(x, t), e)


def test_hparams_come_from_the_teacher(teacher_ckpt):
    compass = _compass(teacher_ckpt)
    teacher = load_module(teacher_ckpt, expected_kind="teacher")
    for key in ("source", "scheduler_exponent", "t_max", "seq_len", "vocab_size"):
        assert compass.hparams[key] == teacher.hparams[key], key
    assert compass.source_name == teacher.path.source.name
    assert compass.hparams.teacher_hparams["backbone"]["hidden_size"] == BACKBONE.hidden_size  # plain dict
    assert compass.data_card == read_checkpoint_header(teacher_ckpt)["data_card"]


@pytest.mark.parametrize("teacher_config,compass_config,vocab,seq_len", [
    ("synthetic_tiny", "synthetic_compass", 64, 32),
    ("text_tiny", "text_compass", 2048, 64),
])
def test_shipped_compasses_are_5_to_15_percent_of_their_teachers(teacher_config, compass_config, vocab, seq_len):
    def backbone(name: str) -> TransformerConfig:
        return TransformerConfig(**yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())["model"]["init_args"]["backbone"])

    teacher = DiffusionTransformer(backbone(teacher_config), vocab + 1, vocab, seq_len)
    compass = DiffusionTransformer(backbone(compass_config), vocab + 1, 1, seq_len)
    assert 0.05 <= _count(compass) / _count(teacher) <= 0.15
    assert backbone(compass_config) == DEFAULT_BACKBONE


# ---------------------------------------------------------------- negatives


class RecordingJump(BlindJump):
    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def __call__(self, x, probs, s, h, path, generator=None):
        out = super().__call__(x, probs, s, h, path, generator)
        self.calls.append((x, out, s, h))
        return out


@pytest.mark.parametrize("negatives", ["jump", "rollout"])
def test_negatives_are_teacher_jumps_to_the_positives_time(teacher_ckpt, negatives):
    compass = _compass(teacher_ckpt, negatives=negatives, num_negatives=2)
    compass.blind_jump = RecordingJump()
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, VOCAB, (16, LEN), generator=g)
    t = torch.rand(16, generator=g) * compass.hparams.t_max
    x_pos, x_neg = compass.contrastive_batch(x1, t, g)
    assert x_pos.shape == x1.shape and x_neg.shape == (16, 2, LEN) and x_neg.dtype == x_pos.dtype == torch.long
    assert 0 <= int(x_neg.min()) and int(x_neg.max()) < compass.path.source.input_vocab_size  # mask id = VOCAB
    calls = compass.blind_jump.calls
    assert len(calls) == (1 if negatives == "jump" else compass.hparams.rollout_steps)
    t_rep = t.repeat_interleave(2)
    s, h = calls[0][2], calls[0][3]
    assert torch.allclose(calls[-1][2] + calls[-1][3], t_rep, atol=1e-6)  # the last jump lands at t
    if negatives == "jump":
        assert (s >= 0).all()
        levels = -torch.log2(h[s > 0])
        assert torch.allclose(levels, levels.round(), atol=1e-4) and levels.min() >= 1 and levels.max() <= 6
        assert torch.allclose(h[s == 0], t_rep[s == 0], atol=1e-6)
    else:
        assert torch.equal(s, torch.zeros_like(s))
    if compass.source_name == "mask":
        for before, after, _, _ in calls:  # revealed tokens of x_s stay revealed and unchanged
            revealed = before != VOCAB
            assert torch.equal(after[revealed], before[revealed])
        if negatives == "rollout":
            assert (calls[0][0] == VOCAB).all()  # the rollout starts from the all-mask source


@pytest.mark.parametrize("negatives", ["jump", "rollout"])
def test_mask_negatives_reveal_as_many_tokens_as_positives(negatives, tmp_path):
    """With the mask source, x- and x+ have the same law of the masked count (1 - kappa(t) masked): the compass
    cannot tell them apart by how much is revealed, only by what."""
    teacher = TeacherModule(VOCAB, LEN, backbone=BACKBONE)
    ckpt = _fit_checkpoint(teacher, tmp_path, steps=1)
    compass = _compass(ckpt, negatives=negatives)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randint(0, VOCAB, (512, LEN), generator=g)
    t = torch.full((512,), 0.5)
    x_pos, x_neg = compass.contrastive_batch(x1, t, g)
    masked_pos, masked_neg = (x_pos == VOCAB).float().mean(), (x_neg == VOCAB).float().mean()
    assert abs(masked_pos - 0.5) < 0.05 and abs(masked_neg - 0.5) < 0.05


# ---------------------------------------------------------------- losses and learning


def test_losses_at_zero_energy_and_finite():
    e_pos, e_neg = torch.zeros(4), torch.zeros(4, 3)
    assert torch.isclose(LOSSES["logistic"](e_pos, e_neg), torch.tensor(2 * math.log(2.0)))
    assert torch.isclose(LOSSES["infonce"](e_pos, e_neg), torch.tensor(math.log(4.0)))
    lower_pos = LOSSES["infonce"](torch.full((4,), -1.0), e_neg)
    assert lower_pos < LOSSES["infonce"](e_pos, e_neg)  # a positive with lower energy is a better score


@pytest.mark.parametrize("loss,num_negatives", [("logistic", 1), ("infonce", 3)])
def test_training_on_a_fixed_batch_lowers_positive_energies_relative_to_negatives(teacher_ckpt, loss, num_negatives):
    compass = _compass(teacher_ckpt, loss=loss, num_negatives=num_negatives)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, VOCAB, (16, LEN), generator=g)
    t = torch.rand(16, generator=g) * 0.9 + 0.05
    x_pos, x_neg = compass.contrastive_batch(x1, t, g)
    optimizer = torch.optim.Adam(compass.parameters(), lr=1e-2)

    def gap() -> float:
        with torch.no_grad():
            e_pos, e_neg = compass.contrastive_energies(x_pos, x_neg, t)
        return float(e_neg.mean() - e_pos.mean())

    before = gap()
    for _ in range(15):
        e_pos, e_neg = compass.contrastive_energies(x_pos, x_neg, t)
        value = LOSSES[loss](e_pos, e_neg)
        assert torch.isfinite(value)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert gap() > before + 0.5


def test_validation_logs_nce_accuracy_per_time_bin_reproducibly(teacher_ckpt, tmp_path):
    compass = _compass(teacher_ckpt, num_negatives=2)
    results = [quick_trainer(tmp_path, 1, val_batches=2).validate(compass, datamodule=_datamodule(), verbose=False)[0]
               for _ in range(2)]
    assert {"val/loss", "val/nce_acc", *BINS} <= set(results[0])
    assert all(0.0 <= results[0][key] <= 1.0 for key in ["val/nce_acc", *BINS])
    assert results[0] == results[1]


def _learnable_data() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=16, num_states=8, seq_len=16, num_train=2048, num_val=256, batch_size=32)


def test_a_short_fit_separates_teacher_jumps_from_data(tmp_path):
    """A barely trained teacher reveals tokens almost uniformly, ignoring the language's sparse transitions; 200
    steps of a tiny compass learn to give its jumps higher energy (held-out NCE accuracy about 0.7; chance 0.5).
    Against a well-trained teacher the same budget stays near chance: its errors are rarer and subtler."""
    backbone = TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)
    torch.manual_seed(0)
    teacher = TeacherModule(16, 16, backbone=backbone, optimizer=OptimizerConfig(lr=3e-3, warmup_steps=10))
    ckpt = _fit_checkpoint(teacher, tmp_path / "teacher", steps=5, datamodule=_learnable_data())
    torch.manual_seed(0)
    compass = CompassModule(str(ckpt), 16, 16, backbone=backbone, optimizer=OptimizerConfig(lr=3e-3, warmup_steps=10))
    trainer = quick_trainer(tmp_path / "compass", 200, val_batches=8)
    before = trainer.validate(compass, datamodule=_learnable_data(), verbose=False)[0]["val/nce_acc"]
    trainer.fit(compass, datamodule=_learnable_data())
    after = trainer.validate(compass, datamodule=_learnable_data(), verbose=False)[0]
    assert after["val/nce_acc"] > 0.6 and after["val/nce_acc"] > before
    assert compass.parameter_ratio() == pytest.approx(_count(compass) / _count(teacher))


# ---------------------------------------------------------------- checkpoints and errors


def test_compass_checkpoint_holds_no_teacher_and_loads_without_it(teacher_ckpt, tmp_path):
    compass = _compass(teacher_ckpt)
    assert all(name.startswith("net.") for name, _ in compass.named_parameters())
    saved = _fit_checkpoint(compass, tmp_path, steps=2)
    checkpoint = torch.load(saved, weights_only=False)
    assert all(key.startswith("net.") for key in checkpoint["state_dict"])  # the frozen teacher is not saved
    assert checkpoint["tsdfm"]["kind"] == "compass"
    x, t = _states(compass, 4), torch.rand(4)
    hidden = teacher_ckpt.with_name("moved.ckpt")
    teacher_ckpt.rename(hidden)
    try:
        loaded = load_module(saved, expected_kind="compass")
    finally:
        hidden.rename(teacher_ckpt)
    assert isinstance(loaded, CompassModule) and loaded._teacher is None
    assert torch.equal(loaded.energies(x, t), compass.eval().energies(x, t))
    assert loaded.data_card == compass.data_card and loaded.source_name == compass.source_name
    with pytest.raises(ValueError, match="'compass' checkpoint, but a 'teacher'"):
        CompassModule(str(saved), VOCAB, LEN)


def test_incompatible_teachers_and_settings_are_refused(teacher_ckpt, tmp_path):
    causal = _fit_checkpoint(CausalLMModule(VOCAB, LEN, backbone=BACKBONE), tmp_path / "causal", steps=1)
    with pytest.raises(ValueError, match="'causal_lm' checkpoint, but a 'teacher'"):
        CompassModule(str(causal), VOCAB, LEN)
    student = _fit_checkpoint(StudentModule(str(teacher_ckpt), VOCAB, LEN, teacher_steps=8), tmp_path / "student", steps=1)
    with pytest.raises(ValueError, match="'student' checkpoint, but a 'teacher'"):
        CompassModule(str(student), VOCAB, LEN)
    with pytest.raises(ValueError, match="vocab_size=8 but the data has 9 tokens"):
        CompassModule(str(teacher_ckpt), VOCAB + 1, LEN)
    with pytest.raises(ValueError, match="seq_len"):
        CompassModule(str(teacher_ckpt), VOCAB, 2 * LEN)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CompassModule(str(tmp_path / "missing.ckpt"), VOCAB, LEN)
    for bad, match in [({"negatives": "blind"}, "negatives"), ({"loss": "hinge"}, "loss"),
                       ({"num_negatives": 0}, "num_negatives"), ({"negative_levels": 0}, "negative_levels")]:
        with pytest.raises(ValueError, match=match):
            CompassModule(str(teacher_ckpt), VOCAB, LEN, **bad)


def test_compass_refuses_data_of_another_language(teacher_ckpt, tmp_path):
    with pytest.raises(ValueError, match="mismatch"):
        quick_trainer(tmp_path, 1).fit(_compass(teacher_ckpt), datamodule=_datamodule(language_seed=7))


# ---------------------------------------------------------------- CLI


TINY = {"vocab_size": 16, "num_states": 8, "seq_len": 16, "num_train": 64, "num_val": 16, "batch_size": 8}


def test_cli_fits_the_synthetic_compass_config(tmp_path, monkeypatch):
    """`tsdfm fit --config configs/synthetic_compass.yaml --trainer.max_steps=2`, with a tiny teacher and data."""
    config = read_config(CONFIGS / "synthetic_compass.yaml")
    data_args = {**config["data"]["init_args"], **TINY}
    torch.manual_seed(0)
    teacher = TeacherModule(16, 16, backbone=BACKBONE)
    teacher_path = _fit_checkpoint(teacher, tmp_path / "teacher", steps=1, datamodule=SyntheticDataModule(**data_args))
    (checkpoint,) = config["trainer"]["callbacks"]
    checkpoint["init_args"]["dirpath"] = str(tmp_path / "checkpoints")
    config["trainer"].update(accelerator="cpu", enable_progress_bar=False, default_root_dir=str(tmp_path))
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp_path)
    config["model"]["init_args"]["teacher_checkpoint"] = str(teacher_path)
    config["data"]["init_args"] = data_args
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(["fit", "--config", str(path), "--trainer.max_steps=2", "--trainer.val_check_interval=2",
          "--trainer.limit_val_batches=1", "--model.init_args.backbone.hidden_size=16",
          "--model.init_args.backbone.num_layers=1", "--model.init_args.backbone.cond_size=16"])
    compass = load_module(tmp_path / "checkpoints" / "last.ckpt", expected_kind="compass")
    assert compass.hparams.vocab_size == 16 and compass.hparams.seq_len == 16 and compass.hparams.source == "mask"
    assert compass.hparams.backbone.hidden_size == 16 and compass.hparams.negatives == "jump"
    assert compass.data_card["hmm"]["num_states"] == 8


@pytest.mark.parametrize("name", ["synthetic_compass", "text_compass"])
def test_compass_configs_parse(name, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tsdfm", "fit", "--config", str(CONFIGS / f"{name}.yaml"), "--print_config"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "lightning_tsdfm.CompassModule"
    assert printed["model"]["init_args"]["teacher_checkpoint"].endswith("_tiny_mask/checkpoints/last.ckpt")
