"""Checkpoints are read without running code: planted pickles and unregistered module classes are refused."""

from __future__ import annotations

import pathlib
import sys
from types import ModuleType

import lightning as L
import pytest
import torch

from lightning_tsdfm.cli import main
from lightning_tsdfm.data import SyntheticDataModule
from lightning_tsdfm.modules import TeacherModule, load_module, read_checkpoint, read_checkpoint_header
from lightning_tsdfm.modules import checkpoint as checkpoint_file
from lightning_tsdfm.modules.teacher_checkpoint import read_teacher


class _Touch:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _planted(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    header = {"kind": "teacher", "class_path": "lightning_tsdfm.modules.teacher.TeacherModule", "data_card": None}
    torch.save({"tsdfm": header, "state_dict": {}, "payload": _Touch(marker)}, path)
    return path


def _forged(path: pathlib.Path, class_path) -> pathlib.Path:
    torch.save({"tsdfm": {"kind": "teacher", "class_path": class_path, "data_card": None}, "state_dict": {}}, path)
    return path


@pytest.fixture
def genuine_ckpt(tmp_path, tiny_config) -> pathlib.Path:
    """A one-step TeacherModule checkpoint written by a plain Trainer (loops, callbacks and optimizer state)."""
    dm = SyntheticDataModule(vocab_size=16, num_states=8, seq_len=8, num_train=16, num_val=8, batch_size=8)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(TeacherModule(16, 8, backbone=tiny_config), datamodule=dm)
    path = tmp_path / "teacher.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_the_planted_checkpoint_runs_code_when_unpickled_unsafely(tmp_path):
    """The plant is live: a plain ``torch.load(weights_only=False)`` creates its marker."""
    marker = tmp_path / "control"
    torch.load(_planted(tmp_path / "evil.ckpt", marker), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("reader", [
    read_checkpoint, read_checkpoint_header, load_module, lambda path: read_teacher(str(path), 16, 8),
], ids=["read_checkpoint", "read_checkpoint_header", "load_module", "read_teacher"])
def test_a_planted_checkpoint_is_refused_without_running_code(tmp_path, reader):
    """Every reader refuses the plant with a message naming the file and the foreign objects; no marker appears."""
    marker = tmp_path / "pwned"
    path = _planted(tmp_path / "evil.ckpt", marker)
    with pytest.raises(ValueError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message and "allow-list" in message and "never unpickles arbitrary code" in message
    assert "pathlib" in message  # the object torch refused is named
    assert not marker.exists()


def test_tsdfm_sample_refuses_a_planted_checkpoint(tmp_path, capsys):
    """``tsdfm sample --checkpoint`` fails on the plant before writing anything (one line, exit status 2); no
    marker appears."""
    marker, output = tmp_path / "pwned", tmp_path / "out.jsonl"
    path = _planted(tmp_path / "evil.ckpt", marker)
    with pytest.raises(SystemExit) as info:
        main(["sample", "--checkpoint", str(path), "--output", str(output), "--steps", "2", "--num_samples", "2"])
    assert info.value.code == 2
    assert "never unpickles arbitrary code" in capsys.readouterr().err
    assert not marker.exists() and not output.exists()


@pytest.mark.parametrize("class_path", ["os.system", "collections.OrderedDict", "this.Zen", ["not", "a", "name"]])
def test_an_unregistered_class_path_is_refused_before_import(tmp_path, monkeypatch, class_path):
    """A header naming a class outside the registered modules is refused by name, listing the allowed ones,
    and its module is never imported."""
    monkeypatch.delitem(sys.modules, "this", raising=False)  # importing `this` prints; it must stay unimported
    path = _forged(tmp_path / "forged.ckpt", class_path)
    with pytest.raises(ValueError) as info:
        load_module(path)
    message = str(info.value)
    assert repr(class_path) in message and "not a registered lightning-tsdfm module" in message
    assert "lightning_tsdfm.modules.teacher.TeacherModule" in message  # what is allowed
    assert "this" not in sys.modules


def test_a_loaded_plugins_module_classes_are_allowed(monkeypatch):
    """The LightningModules a plugin's entry point exports join the allow-list; its other objects do not."""
    plugin = ModuleType("tsdfm_fake")
    plugin.FakeModule = type("FakeModule", (L.LightningModule,), {"__module__": "tsdfm_fake.module"})
    plugin.helper = torch.nn.Linear
    monkeypatch.setattr(checkpoint_file, "load_plugins", lambda: {"fake": plugin})
    assert checkpoint_file.module_class("tsdfm_fake.module.FakeModule") is plugin.FakeModule
    assert "torch.nn.modules.linear.Linear" not in checkpoint_file.module_classes()


def test_a_genuine_checkpoint_still_loads(genuine_ckpt):
    """A real checkpoint needs no global beyond the allow-list and loads with its weights and data card."""
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in checkpoint_file.CHECKPOINT_GLOBALS}
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(genuine_ckpt)) <= allowed
    checkpoint = read_checkpoint(genuine_ckpt, expected_kind="teacher")
    module = load_module(genuine_ckpt, expected_kind="teacher")
    assert isinstance(module, TeacherModule) and not module.training
    assert module.hparams.backbone == checkpoint["hyper_parameters"]["backbone"]
    assert module.data_card == checkpoint["tsdfm"]["data_card"] and module.data_card["kind"] == "synthetic"
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, checkpoint["state_dict"][name])
