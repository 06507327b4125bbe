"""A checkpoint file is read once per load: ``load_module`` builds the module from the dict it read (as Lightning's
``load_from_checkpoint`` would from the file), and a module built from a teacher checkpoint keeps the teacher it
read rather than reading the file again."""

from __future__ import annotations

import pytest
import torch
from lightning_helpers import TINY_LEN, TINY_VOCAB

from lightning_tsdfm import CompassModule, StudentModule, TeacherModule
from lightning_tsdfm.checkpoints import load_module


@pytest.fixture
def torch_loads(monkeypatch):
    """The files ``torch.load`` reads, in order."""
    loads, load = [], torch.load

    def counted(f, *args, **kwargs):
        loads.append(str(f))
        return load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    return loads


def test_load_module_reads_the_file_once(teacher_ckpt, torch_loads):
    load_module(teacher_ckpt, expected_kind="teacher")
    assert torch_loads == [str(teacher_ckpt)]


def test_a_module_built_from_a_teacher_checkpoint_reads_it_once(teacher_ckpt, torch_loads):
    student = StudentModule(str(teacher_ckpt), TINY_VOCAB, TINY_LEN, teacher_steps=8)
    student.teacher()
    CompassModule(str(teacher_ckpt), TINY_VOCAB, TINY_LEN).teacher()
    assert torch_loads == [str(teacher_ckpt)] * 2


def test_load_module_builds_what_lightning_loads_from_the_file(teacher_ckpt):
    ours = load_module(teacher_ckpt)
    lightnings = TeacherModule.load_from_checkpoint(str(teacher_ckpt), weights_only=True).eval()
    assert type(ours) is TeacherModule and not ours.training
    assert dict(ours.hparams) == dict(lightnings.hparams) and ours.data_card == lightnings.data_card
    theirs = lightnings.state_dict()
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in ours.state_dict().items())
    assert ours.state_dict().keys() == theirs.keys()


def test_the_checkpoint_package_imports_nothing_above_it():
    """lightning_tsdfm.checkpoints is a floor: it imports the backbone's config, errors and plugin discovery, never
    the modules, shaping or metrics that stand on it (they register their classes and configs with it)."""
    import ast
    from pathlib import Path

    import lightning_tsdfm.checkpoints as package

    below = ("lightning_tsdfm.checkpoints", "lightning_tsdfm.errors", "lightning_tsdfm.models", "lightning_tsdfm.plugins")
    imported = {node.module for path in Path(package.__file__).parent.glob("*.py")
                for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
                and node.module and node.module.startswith("lightning_tsdfm")}
    assert imported and all(name.startswith(below) for name in imported), sorted(imported)
