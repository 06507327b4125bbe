"""The DUO plugin's configs (plugins/duo/configs) run through `tsdfm fit` at tiny sizes: DUO on the synthetic
language, then its DCD student; the text-like pair (duo_textlike.yaml, duo_dcd_textlike.yaml) and the corpus pair
(duo_text.yaml, duo_dcd_text.yaml) the same way; DUO on the text-like language and on a corpus of one's own through
--data; both checkpoints sample through `tsdfm sample` and benchmarks/quality.py (``duo:uniform:STEPS=CHECKPOINT``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning_helpers import TINY_BACKBONE, import_benchmark

from lightning_tsdfm.cli import main
from lightning_tsdfm.config_file import read_config
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.samples_io import read_jsonl

pytest.importorskip("tsdfm_duo", reason="install the plugin: pip install --no-deps -e plugins/duo")

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_CONFIGS = ROOT / "plugins" / "duo" / "configs"
DATA = ROOT / "configs" / "data"
TINY_DATA = ["--data.init_args.num_train=64", "--data.init_args.num_val=16", "--data.init_args.batch_size=8",
             "--data.init_args.seq_len=16"]


def plugin_fit_args(config: str, root: Path, *extra: str, steps: int = 2) -> list[str]:
    """``tsdfm fit`` arguments for ``plugins/duo/configs/<config>`` with every output under ``root``, a cheap
    generation monitor, no wall-clock cap and ``steps`` optimizer steps."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = read_config(PLUGIN_CONFIGS / config)  # the data group read in: the config is written elsewhere
    for callback in cfg["trainer"]["callbacks"]:
        if callback["class_path"].endswith("GenerationMonitor"):
            callback["init_args"].update(num_samples=2, steps=2)
    cfg["trainer"].update(accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                          default_root_dir=str(root), max_time=None, max_steps=steps, limit_val_batches=1,
                          val_check_interval=steps)
    path = root / f"config_{config}"
    path.write_text(yaml.safe_dump(cfg))
    return ["fit", "--config", str(path), *extra]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """DUO (2 curriculum steps, then 2 discrete ones) and its DCD student (2 rounds of 1 step) from the configs."""
    argv, sys.argv = sys.argv, ["tsdfm"]
    try:
        return fit_duo_then_dcd(tmp_path_factory.mktemp("duo_configs"), "duo.yaml", "duo_dcd.yaml",
                                curriculum_steps=2, duo_steps=4)
    finally:
        sys.argv = argv


def fit_duo_then_dcd(root: Path, duo_config: str, dcd_config: str, curriculum_steps: int,
                     duo_steps: int, data: list[str] = TINY_DATA) -> tuple[Path, Path]:
    """``duo_config`` fitted tiny (``curriculum_steps`` of its ``duo_steps`` on the curriculum), then ``dcd_config``
    reading its checkpoint (2 rounds of 1 step), both with the ``data`` overrides; the two last.ckpt paths."""
    main(plugin_fit_args(duo_config, root / "duo", *TINY_BACKBONE, *data,
                         f"--model.init_args.curriculum_steps={curriculum_steps}", steps=duo_steps))
    teacher = root / "duo" / "checkpoints" / "last.ckpt"
    main(plugin_fit_args(dcd_config, root / "dcd", *data, f"--model.init_args.teacher_checkpoint={teacher}",
                         "--model.init_args.steps_per_round=1", "--model.init_args.num_rounds=2", steps=2))
    return teacher, root / "dcd" / "checkpoints" / "last.ckpt"


def test_duo_then_dcd_fit_from_the_configs(fitted):
    teacher, student = fitted
    assert torch.load(teacher, weights_only=False)["global_step"] == 4
    saved = torch.load(student, weights_only=False)
    assert saved["global_step"] == 2 and saved["dcd"]["round"] == 1
    duo, dcd = load_module(teacher, expected_kind="duo"), load_module(student, expected_kind="duo_dcd")
    assert duo.curriculum.steps == 2 and dcd.hparams.teacher_checkpoint == str(teacher)
    assert dcd.sample(2, 1).shape == (2, 16)


def test_both_checkpoints_sample_through_the_cli_with_a_prompt(fitted, tmp_path):
    for checkpoint in fitted:
        out = tmp_path / f"{checkpoint.parent.parent.name}.jsonl"
        main(["sample", "--checkpoint", str(checkpoint), "--output", str(out), "--steps", "4", "--num_samples", "3",
              "--prompt", "t1 t2 t3"])
        samples = read_jsonl(out)
        assert samples.meta["source"] == "uniform" and samples.meta["sampler"] == "ancestral"
        assert samples.tokens.shape == (3, 16) and (samples.tokens[:, :3] == torch.tensor([1, 2, 3])).all()


def test_quality_benchmark_rows_for_duo_and_its_student(fitted, tmp_path, monkeypatch):
    quality = import_benchmark("quality", tmp_path, monkeypatch)
    teacher, student = fitted
    data = read_config(PLUGIN_CONFIGS / "duo.yaml")["data"]  # the checkpoints' data, at the tiny sizes
    data["init_args"].update(num_train=64, num_val=16, batch_size=8, seq_len=16)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": data}))
    rows = quality.run("duo", "synthetic", str(config), [f"duo:uniform:2,4={teacher}", f"duo-dcd:uniform:2={student}"],
                       ["oracle"], num_samples=8, seed=0, batch_size=None, samples_dir=str(tmp_path / "samples"))
    measured = {(r["method"], r["steps"]) for r in rows if r["method"] != "data"}
    assert measured == {("duo", 2), ("duo", 4), ("duo-dcd", 2)}
    assert all(r["gen_ppl"] > 1 and r["sampler"] == "ancestral" for r in rows if r["method"] != "data")


def test_the_frontier_arms_spec_samples_both_checkpoints_in_a_temperature_sweep(fitted, tmp_path, monkeypatch):
    """As benchmarks/registry/frontier.yaml's DUO arms pass them: METHOD:uniform:STEPS:ancestral=CHECKPOINT (the one
    sampler DUO and DCD have) with temperatures above 1, one row per temperature."""
    quality = import_benchmark("quality", tmp_path, monkeypatch)
    teacher, student = fitted
    assert load_module(student, expected_kind="duo_dcd").samplers == ("ancestral",)
    data = read_config(PLUGIN_CONFIGS / "duo.yaml")["data"]
    data["init_args"].update(num_train=64, num_val=16, batch_size=8, seq_len=16)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": data}))
    specs = [f"duo:uniform:2:ancestral={teacher}", f"duo-dcd:uniform:2:ancestral={student}"]
    rows = quality.run("duo", "synthetic", str(config), specs, ["oracle"], num_samples=8, seed=0, batch_size=None,
                       samples_dir=str(tmp_path / "samples"), temperatures=(1.0, 1.5))
    swept = {(r["method"], r["sampling_temperature"]) for r in rows if r["method"] != "data"}
    assert swept == {("duo", 1.0), ("duo", 1.5), ("duo-dcd", 1.0), ("duo-dcd", 1.5)}


def small_corpus(tmp_path: Path) -> list[str]:
    """Overrides of the web-bible config's TextDataModule that read a small corpus of one's own (the embedded one
    takes longer), its tokenizer cached under ``tmp_path``."""
    words = "and the light was good in the beginning of days water earth said let there be".split()
    corpus = tmp_path / "my.txt"
    corpus.write_text("\n\n".join(" ".join(words[(i * 7 + j) % len(words)] for j in range(40)) for i in range(30)))
    return [f"--data.init_args.corpus={corpus}", f"--data.init_args.cache_dir={tmp_path / 'cache'}",
            "--data.init_args.bpe_vocab_size=300", "--data.init_args.seq_len=16", "--data.init_args.batch_size=4"]


@pytest.mark.parametrize("data", ["textlike", "corpus"])
def test_duo_fits_the_text_like_language_and_a_corpus_through_data(data, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    if data == "textlike":
        extra = ["--data", str(DATA / "textlike.yaml"), *TINY_DATA]
    else:
        extra = ["--data", str(DATA / "web_bible.yaml"), *small_corpus(tmp_path)]
    main(plugin_fit_args("duo.yaml", tmp_path / "run", *TINY_BACKBONE, *extra, "--model.init_args.curriculum_steps=1",
                         steps=2))
    module = load_module(tmp_path / "run" / "checkpoints" / "last.ckpt", expected_kind="duo")
    assert module.data_card["kind"] == ("synthetic" if data == "textlike" else "text")
    assert module.sample(2, 2).shape == (2, 16)


def test_the_text_like_configs_fit_duo_then_its_dcd_student_on_the_text_like_language(tmp_path, monkeypatch):
    """duo_textlike.yaml, then duo_dcd_textlike.yaml reading its checkpoint: the student passes the data-card check
    against its teacher's text-like data."""
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    teacher, student = fit_duo_then_dcd(tmp_path, "duo_textlike.yaml", "duo_dcd_textlike.yaml", curriculum_steps=1,
                                        duo_steps=2)
    duo = load_module(teacher, expected_kind="duo")
    dcd = load_module(student, expected_kind="duo_dcd")
    assert duo.data_card["hmm"]["family"] == dcd.data_card["hmm"]["family"] == "textlike"
    assert dcd.sample(2, 2).shape == (2, 16)


def test_the_text_like_configs_have_our_text_like_teachers_data_backbone_and_budgets():
    """DUO: the text-like teacher's data, 128 x 4 x 4 backbone and 2,750 steps; DCD: our text-like student's 750
    steps, num_rounds x steps_per_round, from runs/duo_textlike."""
    ours = read_config(ROOT / "configs" / "textlike_teacher.yaml")
    duo, dcd = read_config(PLUGIN_CONFIGS / "duo_textlike.yaml"), read_config(PLUGIN_CONFIGS / "duo_dcd_textlike.yaml")
    assert duo["data"] == dcd["data"] == ours["data"]
    assert duo["model"]["init_args"]["backbone"] == ours["model"]["init_args"]["backbone"]
    assert duo["trainer"]["max_steps"] == ours["trainer"]["max_steps"] == 2750
    assert duo["trainer"]["default_root_dir"] == "runs/duo_textlike"
    rounds = dcd["model"]["init_args"]
    assert dcd["trainer"]["max_steps"] == rounds["num_rounds"] * rounds["steps_per_round"] == 750
    assert rounds["teacher_checkpoint"] == "runs/duo_textlike/checkpoints/last.ckpt"
    assert dcd["trainer"]["default_root_dir"] == "runs/duo_dcd_textlike"


def test_the_corpus_configs_fit_duo_then_its_dcd_student_on_a_corpus(tmp_path, monkeypatch):
    """duo_text.yaml, then duo_dcd_text.yaml reading its checkpoint, on the configs' own web-bible data module (a
    small corpus of one's own through its keys): the student passes the data-card check against its teacher."""
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    teacher, student = fit_duo_then_dcd(tmp_path, "duo_text.yaml", "duo_dcd_text.yaml", curriculum_steps=1,
                                        duo_steps=2, data=small_corpus(tmp_path))
    duo = load_module(teacher, expected_kind="duo")
    dcd = load_module(student, expected_kind="duo_dcd")
    assert duo.data_card["kind"] == dcd.data_card["kind"] == "text"
    assert dcd.sample(2, 2).shape == (2, 16)


def test_the_corpus_configs_have_our_corpus_teachers_data_backbone_and_budgets():
    """DUO: our corpus teacher's data, 192 x 4 x 4 backbone and 912 steps (what its time budget reached), its
    curriculum the share duo_textlike.yaml's takes of its run; DCD: our corpus student's 400 steps, num_rounds x
    steps_per_round, from runs/corpus_duo, with validation and saves once per round."""
    ours = read_config(ROOT / "configs" / "demo_text_teacher.yaml")
    student = read_config(ROOT / "configs" / "demo_text_student.yaml")
    duo, dcd = read_config(PLUGIN_CONFIGS / "duo_text.yaml"), read_config(PLUGIN_CONFIGS / "duo_dcd_text.yaml")
    textlike = read_config(PLUGIN_CONFIGS / "duo_textlike.yaml")
    assert duo["data"] == dcd["data"] == ours["data"] == student["data"]
    assert duo["model"]["init_args"]["backbone"] == ours["model"]["init_args"]["backbone"]
    assert duo["trainer"]["max_steps"] == 912 and duo["trainer"]["default_root_dir"] == "runs/corpus_duo"
    share = textlike["model"]["init_args"]["curriculum_steps"] / textlike["trainer"]["max_steps"]
    assert duo["model"]["init_args"]["curriculum_steps"] == round(share * 912)
    rounds = dcd["model"]["init_args"]
    assert dcd["trainer"]["max_steps"] == rounds["num_rounds"] * rounds["steps_per_round"] == student["trainer"][
        "max_steps"] == 400
    assert dcd["trainer"]["val_check_interval"] == rounds["steps_per_round"]
    (checkpoint,) = [c for c in dcd["trainer"]["callbacks"] if c["class_path"].endswith("FinalCheckpoint")]
    assert rounds["steps_per_round"] % checkpoint["init_args"]["every_n_train_steps"] == 0
    assert rounds["teacher_checkpoint"] == "runs/corpus_duo/checkpoints/last.ckpt"
    assert dcd["trainer"]["default_root_dir"] == "runs/corpus_duo_dcd"


@pytest.mark.parametrize("config", ["duo.yaml", "duo_dcd.yaml", "duo_textlike.yaml", "duo_dcd_textlike.yaml",
                                    "duo_text.yaml", "duo_dcd_text.yaml"])
def test_the_configs_follow_the_shipped_configs_conventions(config):
    """As configs/*.yaml: validation counts steps across epochs, and the run directory is the one key that places
    the logs and checkpoints (no save_dir, no dirpath)."""
    trainer = yaml.safe_load((PLUGIN_CONFIGS / config).read_text())["trainer"]
    assert "check_val_every_n_epoch" in trainer and trainer["check_val_every_n_epoch"] is None
    assert "save_dir" not in trainer["logger"]["init_args"]
    assert all("dirpath" not in callback.get("init_args", {}) for callback in trainer["callbacks"])
