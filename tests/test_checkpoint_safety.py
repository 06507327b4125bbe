"""Checkpoints are read without running code: planted pickles, unregistered module classes (wherever a checkpoint
names them) and remote checkpoints are refused."""

from __future__ import annotations

import http.server
import io
import json
import pathlib
import sys
import threading
import urllib.request
from types import ModuleType

import lightning as L
import pytest
import torch
from lightning_helpers import TINY_BACKBONE, TINY_SYNTHETIC, tiny_fit_args

from lightning_tsdfm.checkpoint_io import AtomicCheckpointIO
from lightning_tsdfm.cli import main
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.data import SyntheticDataModule
from lightning_tsdfm.modules import TeacherModule, load_module, read_checkpoint, read_checkpoint_header
from lightning_tsdfm.checkpoints import classes as checkpoint_file
from lightning_tsdfm.modules.teacher_checkpoint import read_teacher


class _Touch:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _planted(path: pathlib.Path, marker: pathlib.Path, kind: str = "teacher") -> pathlib.Path:
    module = {"teacher": "teacher.TeacherModule", "compass": "compass.CompassModule"}[kind]
    header = {"kind": kind, "class_path": f"lightning_tsdfm.modules.{module}", "data_card": None}
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


# ---- remote checkpoints: refused before anything is downloaded


@pytest.fixture
def served_plant(tmp_path, monkeypatch):
    """Planted checkpoints (a teacher's, ``x.ckpt``, and a compass's, ``compass.ckpt``) served over HTTP from
    127.0.0.1 by a thread: yields (the server's URL, the plant's marker, the paths it was asked for); the server is
    stopped afterwards. torch.hub's download cache is moved under ``tmp_path``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    folder, marker, requested = tmp_path / "www", tmp_path / "pwned", []
    folder.mkdir()
    _planted(folder / "x.ckpt", marker)
    _planted(folder / "compass.ckpt", marker, kind="compass")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", marker, requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_served_plant_runs_code_when_downloaded_and_unpickled_unsafely(served_plant):
    """The server answers, and what it serves is live: unpickled with ``weights_only=False`` it creates its marker."""
    url, marker, requested = served_plant
    with urllib.request.urlopen(f"{url}/x.ckpt") as response:
        torch.load(io.BytesIO(response.read()), weights_only=False)
    assert requested == ["/x.ckpt"] and marker.exists()


def _text_samples(folder: pathlib.Path) -> pathlib.Path:
    """A sample file of text data, which an ``ar:`` judge scores."""
    path = folder / "text.jsonl"
    path.write_text(json.dumps({"index": 0, "text": "a b", "tokens": [1, 2], "data": {"kind": "text", "vocab_size": 16,
                                                                                        "seq_len": 16}}) + "\n")
    return path


REMOTE_COMMANDS = {
    "fit --ckpt_path": lambda url, tmp, ckpt: tiny_fit_args("synthetic_tiny.yaml", tmp / "run", *TINY_BACKBONE,
                                                            *TINY_SYNTHETIC, f"--ckpt_path={url}/x.ckpt"),
    "validate --ckpt_path (a compass)": lambda url, tmp, ckpt: [
        "validate", *tiny_fit_args("synthetic_tiny.yaml", tmp / "run", *TINY_BACKBONE, *TINY_SYNTHETIC)[1:],
        f"--ckpt_path={url}/compass.ckpt"],
    "test --ckpt_path": lambda url, tmp, ckpt: [
        "test", *tiny_fit_args("synthetic_tiny.yaml", tmp / "run", *TINY_BACKBONE, *TINY_SYNTHETIC)[1:],
        f"--ckpt_path={url}/x.ckpt"],
    "predict --ckpt_path": lambda url, tmp, ckpt: [
        "predict", *tiny_fit_args("synthetic_tiny.yaml", tmp / "run", *TINY_BACKBONE, *TINY_SYNTHETIC)[1:],
        f"--ckpt_path={url}/x.ckpt"],
    "fit teacher_checkpoint": lambda url, tmp, ckpt: tiny_fit_args(
        "synthetic_student.yaml", tmp / "run", *TINY_SYNTHETIC, "--model.init_args.teacher_steps=8",
        f"--model.init_args.teacher_checkpoint={url}/x.ckpt"),
    "sample --checkpoint": lambda url, tmp, ckpt: ["sample", "--checkpoint", f"{url}/x.ckpt", "--output",
                                                   str(tmp / "s.jsonl"), "--steps", "2", "--num_samples", "2"],
    "sample --shaped": lambda url, tmp, ckpt: ["sample", "--checkpoint", str(ckpt), "--shaped", f"{url}/compass.ckpt",
                                               "--output", str(tmp / "s.jsonl"), "--steps", "2", "--num_samples", "2"],
    "evaluate --judges ar:": lambda url, tmp, ckpt: ["evaluate", str(_text_samples(tmp)), "--judges",
                                                     f"ar:{url}/x.ckpt"],
}


@pytest.mark.parametrize("command", list(REMOTE_COMMANDS))
def test_a_remote_checkpoint_is_refused_before_it_is_downloaded(command, served_plant, genuine_ckpt, tmp_path,
                                                                monkeypatch, capsys):
    """Every command that takes a checkpoint refuses one given as an http URL with one line saying to download it
    and pass the local path (exit status 2): the server is never asked for it and the plant never runs."""
    url, marker, requested = served_plant
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    with pytest.raises(SystemExit) as info:
        main(REMOTE_COMMANDS[command](url, tmp_path, genuine_ckpt))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("tsdfm: error:")]
    assert info.value.code == 2 and len(errors) == 1, err
    assert "remote checkpoints" in errors[0] and "Download the file and pass its local path" in errors[0]
    assert f"{url}/" in errors[0]
    assert requested == [] and not marker.exists()


@pytest.mark.parametrize("path", ["https://example.com/x.ckpt", "s3://bucket/x.ckpt", "gs://bucket/x.ckpt",
                                  "file:///tmp/x.ckpt", "hf://org/model/x.ckpt", "simplecache::https://example.com/x",
                                  "registry:my-model:latest"])
@pytest.mark.parametrize("reader", [read_checkpoint, load_module, AtomicCheckpointIO().load_checkpoint],
                         ids=["read_checkpoint", "load_module", "AtomicCheckpointIO"])
def test_every_remote_scheme_is_refused(path, reader):
    """Any URL scheme, an fsspec chain and Lightning's model registry are remote: refused, naming the path."""
    with pytest.raises(UserError, match="remote checkpoints .* are not loaded") as info:
        reader(path)
    assert path in str(info.value)


# ---- classes named in the hyper-parameters: on the allow-list, or refused before anything is imported

BORING = "lightning.pytorch.demos.boring_classes.BoringModel"

#: where a crafted checkpoint names a foreign class -> (its hyper-parameters, the class named, the module it imports)
NAMED_ELSEWHERE = {
    "_class_path this": ({"_class_path": "this.Zen"}, "this.Zen", "this"),
    "_class_path BoringModel": ({"_class_path": BORING}, BORING, "lightning.pytorch.demos"),
    "nested class_path": ({"backbone": {"class_path": "this.Zen", "init_args": {}}}, "this.Zen", "this"),
    "_instantiator": ({"_class_path": "lightning_tsdfm.TeacherModule", "_instantiator": "this.Zen"}, "this.Zen",
                      "this"),
}


def _named_elsewhere(genuine: pathlib.Path, path: pathlib.Path, hparams: dict) -> pathlib.Path:
    """``genuine`` with ``hparams`` written over its hyper-parameters (its header still names TeacherModule)."""
    checkpoint = torch.load(genuine, weights_only=True)
    checkpoint["hyper_parameters"] = {**checkpoint["hyper_parameters"], **hparams}
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def unimported(monkeypatch):
    """Forget the modules a crafted checkpoint would import (``this`` prints the Zen of Python; Lightning's demos
    hold BoringModel), so a test sees whether they get imported."""
    for name in ("this", "lightning.pytorch.demos", "lightning.pytorch.demos.boring_classes"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.parametrize("case", list(NAMED_ELSEWHERE))
def test_tsdfm_fit_refuses_a_class_named_in_the_hyper_parameters(case, genuine_ckpt, tmp_path, monkeypatch, capsys,
                                                                 unimported):
    """``tsdfm fit --ckpt_path`` refuses a checkpoint whose hyper-parameters name a class outside the allow-list
    (``_class_path``, a nested ``class_path``, ``_instantiator``), in one line naming the class and the file, before
    importing or building anything."""
    hparams, named, module = NAMED_ELSEWHERE[case]
    path = _named_elsewhere(genuine_ckpt, tmp_path / "crafted.ckpt", hparams)
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    with pytest.raises(SystemExit) as info:
        main(tiny_fit_args("synthetic_tiny.yaml", tmp_path / "run", *TINY_BACKBONE, *TINY_SYNTHETIC,
                           f"--ckpt_path={path}"))
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("tsdfm: error:")]
    assert info.value.code == 2 and len(errors) == 1, err
    assert repr(named) in errors[0] and str(path) in errors[0]
    assert module not in sys.modules and "The Zen of Python" not in out + err
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("case", list(NAMED_ELSEWHERE))
@pytest.mark.parametrize("reader", [read_checkpoint, load_module, lambda path: read_teacher(str(path), 16, 8)],
                         ids=["read_checkpoint", "load_module", "read_teacher"])
def test_every_reader_refuses_a_class_named_in_the_hyper_parameters(case, reader, genuine_ckpt, tmp_path, unimported):
    hparams, named, module = NAMED_ELSEWHERE[case]
    path = _named_elsewhere(genuine_ckpt, tmp_path / "crafted.ckpt", hparams)
    with pytest.raises(ValueError) as info:
        reader(path)
    assert repr(named) in str(info.value) and str(path) in str(info.value)
    assert module not in sys.modules


def test_a_hyper_parameter_class_must_be_the_headers(genuine_ckpt, tmp_path):
    """A registered class in ``_class_path`` that is not the header's is refused: the header chooses the class."""
    path = _named_elsewhere(genuine_ckpt, tmp_path / "crafted.ckpt", {"_class_path": "lightning_tsdfm.StudentModule"})
    with pytest.raises(ValueError, match="'lightning_tsdfm.StudentModule' in hyper_parameters._class_path but"):
        read_checkpoint(path)


def test_lightning_clis_own_class_path_and_instantiator_are_allowed(genuine_ckpt, tmp_path):
    """What LightningCLI records (the class by its package's name, its own instantiator) and a checkpoint config in
    a nested ``class_path`` pass; the module named by its package's name loads."""
    path = _named_elsewhere(genuine_ckpt, tmp_path / "cli.ckpt", {
        "_class_path": "lightning_tsdfm.TeacherModule", "_instantiator": "lightning.pytorch.cli.instantiate_module",
        "extra": [{"class_path": "lightning_tsdfm.models.backbone.TransformerConfig"}]})
    hparams = read_checkpoint(path, expected_kind="teacher")["hyper_parameters"]
    assert hparams["_class_path"] == "lightning_tsdfm.TeacherModule"
    path = _named_elsewhere(genuine_ckpt, tmp_path / "alias.ckpt", {"_class_path": "lightning_tsdfm.TeacherModule"})
    assert isinstance(load_module(path), TeacherModule)


def test_hyper_parameters_nested_too_deeply_are_refused(genuine_ckpt, tmp_path):
    nested = []
    for _ in range(100):
        nested = [nested]
    path = _named_elsewhere(genuine_ckpt, tmp_path / "deep.ckpt", {"deep": nested})
    with pytest.raises(ValueError, match="holds hyper-parameters nested deeper than 64 levels") as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)
