"""The reference 170M configs (configs/owt_170m*.yaml) build and train: each is instantiated by the CLI at its full
width (about 170M parameters, GPT-2 tokenizer, 50257 ids) and takes one optimizer step on the CPU, at a reduced
sequence length and batch 1, on a small local corpus instead of OpenWebText (no download).

One module-scoped setup fits the 170M teacher and MDLM once; the student, compass and SDTT configs start from them."""

from __future__ import annotations

import gc
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning_helpers import CONFIGS

from lightning_tsdfm.cli import TsdfmCLI
from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.plugins import load_plugins

pytestmark = pytest.mark.slow

#: tokens per training block here (the configs use 1024): the parameter count does not depend on it
SEQ_LEN = 32
GPT2_VOCAB = 50257


def scaled_down(config: str, root: Path, corpus: Path, *overrides: str, checkpoint: bool = False) -> list[str]:
    """CLI arguments for ``configs/<config>``, unchanged in its model, on the CPU in full precision for one step
    of batch 1 and ``SEQ_LEN`` tokens of ``corpus``, without validation or sampling; with ``checkpoint`` its
    last.ckpt holds the weights only, else no checkpoint is written (saving 170M parameters takes seconds)."""
    cfg = read_config(CONFIGS / config)
    trainer = cfg["trainer"]
    trainer.update(accelerator="cpu", devices=1, strategy="auto", precision="32-true", max_steps=1,
                   limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=str(root))
    trainer["callbacks"] = [c for c in trainer["callbacks"] if c["class_path"].endswith("Checkpoint") and checkpoint]
    for callback in trainer["callbacks"]:
        callback["init_args"]["save_weights_only"] = True
    if not checkpoint:
        trainer["enable_checkpointing"] = False
    cfg["data"]["init_args"].update(corpus=str(corpus), seq_len=SEQ_LEN, batch_size=1, num_workers=0,
                                    val_fraction=0.1, cache_dir=str(root.parent / "cache"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / config
    path.write_text(yaml.safe_dump(cfg))
    return ["fit", "--config", str(path), *overrides]


@pytest.fixture(autouse=True)
def release_memory():
    """Each fit holds several 170M copies (model, EMA, teacher, optimizer state): free them before the next."""
    yield
    gc.collect()


def fit(args: list[str]) -> TsdfmCLI:
    load_plugins()
    return TsdfmCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                    save_config_kwargs={"overwrite": True}, args=args)


def trainable_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def assert_one_step(cli: TsdfmCLI) -> None:
    assert cli.trainer.global_step == 1
    assert cli.datamodule.vocab_size == GPT2_VOCAB  # the GPT-2 tokenizer, read offline from its wheel
    loss = cli.trainer.callback_metrics["train/loss"]
    assert math.isfinite(float(loss)), loss


def assert_170m(module: torch.nn.Module) -> None:
    assert 160e6 < trainable_parameters(module) < 180e6, trainable_parameters(module)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    words = ("the model learns to denoise text one step at a time while a compass scores each candidate jump "
             "and the student follows the teacher along shaped trajectories").split()
    docs = [" ".join(words[(i * 5 + j) % len(words)] for j in range(60)) for i in range(20)]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(docs))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("owt_170m")


@pytest.fixture(scope="module")
def teacher(runs, corpus) -> Path:
    cli = fit(scaled_down("owt_170m.yaml", runs / "teacher", corpus, checkpoint=True))
    assert_one_step(cli)
    assert_170m(cli.model)
    return runs / "teacher" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def mdlm(runs, corpus) -> Path:
    cli = fit(scaled_down("owt_170m_mdlm.yaml", runs / "mdlm", corpus, checkpoint=True))
    assert_one_step(cli)
    assert_170m(cli.model)
    return runs / "mdlm" / "checkpoints" / "last.ckpt"


def test_teacher_config(teacher):
    assert teacher.is_file()


def test_student_config(teacher, runs, corpus):
    cli = fit(scaled_down("owt_170m_student.yaml", runs / "student", corpus,
                          f"--model.init_args.teacher_checkpoint={teacher}"))
    assert_one_step(cli)
    assert_170m(cli.model)  # the teacher's width plus the step-size embedding; the frozen teacher is not counted


def test_compass_config(teacher, runs, corpus):
    cli = fit(scaled_down("owt_170m_compass.yaml", runs / "compass", corpus,
                          f"--model.init_args.teacher_checkpoint={teacher}"))
    assert_one_step(cli)
    assert 10e6 < trainable_parameters(cli.model) < 25e6  # about a tenth of the teacher


def test_mdlm_config(mdlm):
    assert mdlm.is_file()


def test_sdtt_config(mdlm, runs, corpus):
    cli = fit(scaled_down("owt_170m_sdtt.yaml", runs / "sdtt", corpus, f"--model.init_args.teacher_checkpoint={mdlm}"))
    assert_one_step(cli)
    assert_170m(cli.model)


def test_sedd_config(runs, corpus):
    cli = fit(scaled_down("owt_170m_sedd.yaml", runs / "sedd", corpus))
    assert_one_step(cli)
    assert_170m(cli.model)
