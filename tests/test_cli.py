"""End to end through the `tsdfm` entry point: fit a tiny teacher, sample, evaluate; and the CLI's error messages."""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import yaml

from lightning_tsdfm import cli
from lightning_tsdfm.cli import main
from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.data import SyntheticDataModule
from lightning_tsdfm.metrics.judges import ar_judge
from lightning_tsdfm.models import TransformerConfig
from lightning_tsdfm.modules import CausalLMModule, TeacherModule, load_module, read_checkpoint_header
from lightning_tsdfm.modules.data_card import check_fits
from lightning_tsdfm.plugins import ENTRY_POINT_GROUP
from lightning_tsdfm.samples_io import generate_samples, read_jsonl, write_jsonl

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CONFIG = CONFIGS / "synthetic_tiny.yaml"
TINY_BACKBONE = [
    "--model.init_args.backbone.hidden_size=32",
    "--model.init_args.backbone.num_layers=1",
    "--model.init_args.backbone.num_heads=2",
    "--model.init_args.backbone.cond_size=32",
]
TINY_DATA = [
    "--data.init_args.vocab_size=16",
    "--data.init_args.num_states=8",
    "--data.init_args.num_train=256",
    "--data.init_args.num_val=16",
    "--data.init_args.batch_size=8",
    "--data.init_args.seq_len=16",
]


def _write_config(root: Path) -> Path:
    """configs/synthetic_tiny.yaml with every output path under ``root`` and a cheap generation monitor."""
    config = read_config(CONFIG)
    callbacks = config["trainer"]["callbacks"]
    (checkpoint,) = [c for c in callbacks if c["class_path"].endswith("FinalCheckpoint")]
    checkpoint["init_args"]["dirpath"] = str(root / "checkpoints")
    (monitor,) = [c for c in callbacks if c["class_path"].endswith("GenerationMonitor")]
    monitor["init_args"].update(num_samples=4, steps=2)
    config["trainer"]["accelerator"] = "cpu"
    config["trainer"]["enable_progress_bar"] = False
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _fit_args(root: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config", str(_write_config(root)),
        "--trainer.max_steps=2",
        "--trainer.val_check_interval=2",
        "--trainer.limit_val_batches=1",
        f"--trainer.default_root_dir={root}",
        f"--trainer.logger.init_args.save_dir={root}",
        *TINY_BACKBONE,
        *TINY_DATA,
        *extra,
    ]


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["tsdfm"])  # as if from a shell; pytest's own argv is not for LightningCLI
        main(_fit_args(root))
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def causal_lm_ckpt(tmp_path_factory) -> Path:
    """A one-step CausalLMModule checkpoint on the synthetic language, written by a plain Trainer."""
    root = tmp_path_factory.mktemp("ar")
    dm = SyntheticDataModule(vocab_size=16, num_states=8, seq_len=8, num_train=16, num_val=8, batch_size=8)
    model = CausalLMModule(16, 8, backbone=TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, cond_size=32))
    trainer = L.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, default_root_dir=root,
    )
    trainer.fit(model, datamodule=dm)
    path = root / "ar.ckpt"
    trainer.save_checkpoint(path)
    return path


def _samples_file(teacher_ckpt: Path, path: Path, seed: int = 0) -> Path:
    write_jsonl(generate_samples(teacher_ckpt, steps=4, num_samples=4, seed=seed, progress=False), path)
    return path


# ---------------------------------------------------------------- fit, sample, evaluate


def test_fit_writes_a_teacher_checkpoint(teacher_ckpt):
    assert teacher_ckpt.is_file()
    header = read_checkpoint_header(teacher_ckpt)
    assert header["kind"] == "teacher"
    assert header["class_path"] == "lightning_tsdfm.modules.teacher.TeacherModule"
    card = header["data_card"]
    assert card["kind"] == "synthetic" and card["vocab_size"] == 16 and card["seq_len"] == 16
    assert card["hmm"]["num_states"] == 8
    module = load_module(teacher_ckpt, expected_kind="teacher")
    assert isinstance(module, TeacherModule) and not module.training
    # the data's vocabulary and length were linked into the model
    assert module.hparams.vocab_size == 16 and module.hparams.seq_len == 16
    assert module.hparams.backbone.hidden_size == 32
    assert module.data_card == card
    # the logger and the saved config went to the requested folder, not to runs/
    assert list(teacher_ckpt.parent.parent.glob("logs/version_*/config.yaml"))


def test_fit_logs_validation_and_generation_metrics(teacher_ckpt):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (log_dir,) = teacher_ckpt.parent.parent.glob("logs/version_*")
    events = EventAccumulator(str(log_dir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"val/ce", "val/nelbo", "val/gen_ppl", "val/entropy"} <= scalars, scalars
    (gen_ppl,) = events.Scalars("val/gen_ppl")
    assert 1.0 < gen_ppl.value < 1e4  # the oracle judged the monitor's samples
    assert any(tag.startswith("samples/") for tag in events.Tags()["tensors"])


def test_sample_with_documented_flags(teacher_ckpt, tmp_path):
    """README and cli.py document `tsdfm sample --checkpoint CKPT --steps N --output FILE`."""
    out = tmp_path / "s.jsonl"
    main(["sample", "--checkpoint", str(teacher_ckpt), "--output", str(out), "--steps", "4", "--num_samples", "4"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert {"tokens", "text", "steps", "seed", "dtype"} <= set(row)
        assert len(row["tokens"]) == 16 and all(0 <= tok < 16 for tok in row["tokens"])
        assert row["steps"] == 4 and row["seed"] == 0 and row["dtype"] == "float64"
        assert row["text"] == " ".join(f"t{tok}" for tok in row["tokens"])


def test_sample_function_writes_jsonl(teacher_ckpt, tmp_path, capsys):
    out = tmp_path / "sub" / "s.jsonl"
    cli.sample(str(teacher_ckpt), str(out), steps=3, num_samples=5, seed=7, dtype="float32")
    assert "wrote 5 samples" in capsys.readouterr().out
    samples = read_jsonl(out)
    assert samples.tokens.shape == (5, 16) and len(samples.texts) == 5
    assert samples.meta["steps"] == 3 and samples.meta["seed"] == 7 and samples.meta["dtype"] == "float32"
    assert samples.meta["kind"] == "teacher" and samples.meta["source"] == "mask"
    assert samples.meta["data"]["kind"] == "synthetic"


def test_generate_samples_is_seeded(teacher_ckpt):
    a = generate_samples(teacher_ckpt, 4, 6, seed=1, progress=False)
    b = generate_samples(teacher_ckpt, 4, 6, seed=1, progress=False)
    c = generate_samples(teacher_ckpt, 4, 6, seed=2, progress=False)
    assert torch.equal(a.tokens, b.tokens)
    assert not torch.equal(a.tokens, c.tokens)
    assert a.tokens.max() < 16
    with pytest.raises(ValueError, match="dtype"):
        generate_samples(teacher_ckpt, 4, 2, dtype="float16", progress=False)


def test_evaluate_documented_form(teacher_ckpt, tmp_path, capsys):
    """README: `tsdfm evaluate a.jsonl b.jsonl --judges oracle`."""
    first = _samples_file(teacher_ckpt, tmp_path / "s.jsonl")
    second = _samples_file(teacher_ckpt, tmp_path / "t.jsonl", seed=1)
    capsys.readouterr()
    assert main(["evaluate", str(first), str(second), "--judges", "oracle"]) is None  # a console script's exit status
    table = capsys.readouterr().out
    assert "gen_ppl" in table and "oracle" in table and "s.jsonl" in table and "t.jsonl" in table
    assert len([line for line in table.splitlines() if "| oracle" in line]) == 2


def test_evaluate_prints_a_table(teacher_ckpt, tmp_path, capsys):
    first = _samples_file(teacher_ckpt, tmp_path / "a.jsonl", seed=0)
    second = _samples_file(teacher_ckpt, tmp_path / "b.jsonl", seed=1)
    capsys.readouterr()
    rows = cli.evaluate([str(first), str(second)], judges=["oracle", "auto"])
    table = capsys.readouterr().out
    assert len(rows) == 4
    assert [r["file"] for r in rows] == ["a.jsonl", "b.jsonl", "a.jsonl", "b.jsonl"]
    assert all(r["judge"] == "oracle" and r["n_samples"] == 4 and r["steps"] == 4 for r in rows)
    assert all(1.0 < r["gen_ppl"] < 1e4 for r in rows)
    assert rows[0]["gen_ppl"] == rows[2]["gen_ppl"]  # auto is the oracle on synthetic data
    lines = table.strip().splitlines()
    assert lines[0].startswith("| file") and "gen_ppl" in lines[0] and "entropy" in lines[0]
    assert len(lines) == 2 + 4
    assert "a.jsonl" in lines[2] and "oracle" in lines[2]


def test_evaluate_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="tsdfm sample"):
        cli.evaluate([str(tmp_path / "nope.jsonl")], judges=["oracle"])


# ---------------------------------------------------------------- errors


def test_unknown_config_key_names_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    with pytest.raises(SystemExit) as info:
        main(_fit_args(tmp_path, "--model.init_args.no_such_key=1"))
    assert info.value.code != 0
    assert "no_such_key" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_shell_entry_point_does_not_warn_about_its_own_args(tmp_path, monkeypatch, capsys):
    """`tsdfm fit ...` from a shell (main() reading sys.argv) must not trip LightningCLI's args-vs-argv warning."""
    monkeypatch.setattr(sys, "argv", ["tsdfm", "fit", "--config", str(CONFIG), "--print_config"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as info:
            main()
    assert info.value.code in (0, None)
    assert "seed_everything" in capsys.readouterr().out
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "not recommended to provide both args and command line arguments" in m]


def test_sample_refuses_a_plain_torch_file(tmp_path):
    bad = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, bad)
    with pytest.raises(ValueError, match="not a lightning-tsdfm checkpoint"):
        cli.sample(str(bad), str(tmp_path / "out.jsonl"), steps=2, num_samples=2)
    torch.save([1, 2, 3], bad)  # not even a dict
    with pytest.raises(ValueError, match="not a lightning-tsdfm checkpoint"):
        load_module(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_module(tmp_path / "missing.ckpt")
    assert not (tmp_path / "out.jsonl").exists()


def test_teacher_checkpoint_where_a_causal_lm_is_expected(teacher_ckpt):
    with pytest.raises(ValueError) as info:
        load_module(teacher_ckpt, expected_kind="causal_lm")
    message = str(info.value)
    assert "'teacher'" in message and "'causal_lm'" in message
    assert isinstance(load_module(teacher_ckpt, expected_kind=("student", "teacher")), TeacherModule)


def test_causal_lm_checkpoint(causal_lm_ckpt, tmp_path):
    module = load_module(causal_lm_ckpt, expected_kind="causal_lm")
    assert isinstance(module, CausalLMModule)
    assert module.data_card["kind"] == "synthetic"
    with pytest.raises(ValueError, match="'causal_lm' checkpoint"):
        load_module(causal_lm_ckpt, expected_kind="teacher")
    with pytest.raises(ValueError, match="does not sample"):
        generate_samples(causal_lm_ckpt, 2, 2, progress=False)
    with pytest.raises(ValueError, match="text"):
        ar_judge(str(causal_lm_ckpt))


def test_check_fits():
    card = {"kind": "synthetic", "vocab_size": 16, "seq_len": 32}
    check_fits("TeacherModule", 16, 32, "the data", card["vocab_size"], card["seq_len"])
    check_fits("TeacherModule", 16, 64, "the data", card["vocab_size"], card["seq_len"])  # shorter data is fine
    with pytest.raises(ValueError, match="Vocabulary mismatch") as info:
        check_fits("TeacherModule", 20, 32, "the data", card["vocab_size"], card["seq_len"])
    assert "vocab_size=20" in str(info.value) and "16" in str(info.value) and "TeacherModule" in str(info.value)
    with pytest.raises(ValueError, match="Sequence length mismatch") as info:
        check_fits("TeacherModule", 16, 16, "the data", card["vocab_size"], card["seq_len"])
    assert "data.seq_len <= 16" in str(info.value)


def _tiny_teacher(vocab: int = 16, seq_len: int = 16) -> TeacherModule:
    return TeacherModule(vocab, seq_len, backbone=TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, cond_size=32))


def _attach(module: TeacherModule, datamodule) -> None:
    module._trainer = SimpleNamespace(datamodule=datamodule)


def test_data_card_mixin_setup():
    dm = SyntheticDataModule(vocab_size=16, num_states=8, seq_len=16)
    module = _tiny_teacher()
    _attach(module, dm)
    module.setup("fit")
    assert module.data_card == dm.data_card()
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["tsdfm"]["kind"] == "teacher" and checkpoint["tsdfm"]["data_card"] == dm.data_card()
    fresh = _tiny_teacher()
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.data_card == dm.data_card()


@pytest.mark.parametrize(
    "dm_kwargs,match",
    [
        (dict(vocab_size=32, num_states=8, seq_len=16), "Vocabulary mismatch"),
        (dict(vocab_size=16, num_states=8, seq_len=64), "Sequence length mismatch"),
    ],
)
def test_data_card_mixin_rejects_mismatched_data(dm_kwargs, match):
    module = _tiny_teacher(16, 16)
    _attach(module, SyntheticDataModule(**dm_kwargs))
    with pytest.raises(ValueError, match=match):
        module.setup("fit")


def test_data_card_mixin_rejects_another_language():
    """A module trained on one language refuses to continue on another with the same vocabulary."""
    module = _tiny_teacher()
    _attach(module, SyntheticDataModule(vocab_size=16, num_states=8, seq_len=16, language_seed=0))
    module.setup("fit")
    _attach(module, SyntheticDataModule(vocab_size=16, num_states=8, seq_len=16, language_seed=1))
    with pytest.raises(ValueError, match="mismatch"):
        module.setup("fit")


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"]])
def test_usage(argv, capsys):
    main(argv)
    out = capsys.readouterr().out
    assert out.startswith("usage: tsdfm")
    assert "sample" in out and "evaluate" in out and "fit" in out


# ---------------------------------------------------------------- the shipped configs


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_parses(config, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tsdfm", "fit", "--config", str(CONFIGS / config), "--print_config"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    packages = {"lightning_tsdfm"} | {ep.value.split(".")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert yaml.safe_load(capsys.readouterr().out)["model"]["class_path"].split(".")[0] in packages


def test_a_data_file_on_the_command_line_replaces_the_configs_data(monkeypatch, capsys):
    """configs/data/*.yaml are named by the configs and replace their data with --data, keys with --data.init_args."""
    monkeypatch.setattr(sys, "argv", ["tsdfm", "fit", "--config", str(CONFIGS / "synthetic_tiny.yaml"), "--data",
                                      str(CONFIGS / "data" / "textlike.yaml"), "--data.init_args.seq_len=16",
                                      "--print_config"])
    with pytest.raises(SystemExit):
        main()
    data = yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]
    textlike = read_config(CONFIGS / "textlike_teacher.yaml")["data"]["init_args"]
    assert data["family"] == "textlike" and data["seq_len"] == 16 and data["num_topics"] == textlike["num_topics"]

