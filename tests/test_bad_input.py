"""Bad input to `tsdfm` ends in one line on stderr that names the problem and its fix, and exit status 2 (the
traceback only with --debug): one row per mistake, each on tiny configs."""

from __future__ import annotations

import io
import json
import shutil
import struct
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from lightning_helpers import TINY_BACKBONE, TINY_SYNTHETIC, tiny_fit_args

from lightning_tsdfm.cli import main
from lightning_tsdfm.samples_io import generate_samples, read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """A tiny teacher, a student of a copy of it (the copy then replaced by another teacher), sample files and
    broken files."""
    root = tmp_path_factory.mktemp("bad_input")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["tsdfm"])
        main(tiny_fit_args("synthetic_tiny.yaml", root / "teacher", *TINY_BACKBONE, *TINY_SYNTHETIC))
        teacher = root / "teacher" / "checkpoints" / "last.ckpt"
        shutil.copy(teacher, root / "teacher_copy.ckpt")
        main(tiny_fit_args("synthetic_student.yaml", root / "student", *TINY_SYNTHETIC, "--model.init_args.teacher_steps=8",
                           f"--model.init_args.teacher_checkpoint={root / 'teacher_copy.ckpt'}", steps=1))
        main(tiny_fit_args("synthetic_tiny.yaml", root / "other", *TINY_BACKBONE, *TINY_SYNTHETIC, "--seed_everything=1"))
    shutil.copy(root / "other" / "checkpoints" / "last.ckpt", root / "teacher_copy.ckpt")  # the student's teacher changed

    samples = root / "samples.jsonl"
    write_jsonl(generate_samples(teacher, steps=2, num_samples=4, progress=False), samples)
    rows = samples.read_text().splitlines()
    (root / "malformed.jsonl").write_text(rows[0] + "\n\n" + rows[1] + "\n" + rows[2][:40] + "\n")  # line 4 is cut
    text_row = json.loads(rows[0])
    text_row["data"] = {"kind": "text", "vocab_size": 16, "seq_len": 16}
    (root / "text_samples.jsonl").write_text(json.dumps(text_row) + "\n")
    (root / "latin1.txt").write_bytes("In the beginning.\n\nCaf\xe9 society.\n".encode("latin-1"))
    data = teacher.read_bytes()
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (root / "flipped.ckpt").write_bytes(_flip_a_bit(data))
    (root / "random.ckpt").write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                                     dtype=torch.uint8).numpy().tobytes())
    return {"root": root, "teacher": teacher, "student": root / "student" / "checkpoints" / "last.ckpt",
            "samples": samples}


def _flip_a_bit(data: bytes) -> bytes:
    """``data``, a checkpoint, with one bit flipped in the middle of its largest tensor (the zip archive intact)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = max((m for m in archive.infolist() if "/data/" in m.filename), key=lambda m: m.file_size)
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26: member.header_offset + 30])
    at = member.header_offset + 30 + name_length + extra_length + member.file_size // 2
    return data[:at] + bytes([data[at] ^ 0x04]) + data[at + 1:]


def _shaped(*args: str):
    return lambda e, tmp: tiny_fit_args("synthetic_student.yaml", tmp, *TINY_SYNTHETIC, "--model.init_args.teacher_steps=8",
                                        f"--model.init_args.teacher_checkpoint={e['teacher']}",
                                        "--trainer.callbacks+=TrajectoryShaper", "--trainer.callbacks.compass=oracle", *args)


def _teacher_fit(*args: str):
    return lambda e, tmp: tiny_fit_args("synthetic_tiny.yaml", tmp, *TINY_BACKBONE, *TINY_SYNTHETIC, *args)


def _sample(*args: str):
    return lambda e, tmp: ["sample", "--checkpoint", str(e["teacher"]), "--output", str(tmp / "s.jsonl"), "--steps", "2", *args]


def _two_languages(e, tmp) -> list[str]:
    """``tsdfm evaluate`` on the samples of one language with, from line 3, those of another (files concatenated)."""
    rows = e["samples"].read_text().splitlines()
    other = [json.loads(row) for row in rows]
    for row in other:
        row["data"]["hmm"]["seed"] += 1
    (tmp / "mixed.jsonl").write_text("\n".join(rows[:2] + [json.dumps(row) for row in other]) + "\n")
    return ["evaluate", str(tmp / "mixed.jsonl"), "--judges", "oracle"]


def _language_card_with(key: str):
    """``tsdfm evaluate`` on a sample file whose language (data.hmm) has an unknown ``key``."""
    def build(e, tmp) -> list[str]:
        row = json.loads(e["samples"].read_text().splitlines()[0])
        row["data"]["hmm"][key] = 4
        (tmp / "crafted.jsonl").write_text(json.dumps(row) + "\n")
        return ["evaluate", str(tmp / "crafted.jsonl"), "--judges", "oracle"]
    return build


def _sample_over(name: str, content: bytes):
    """``tsdfm sample --output`` naming an existing file of ``content``."""
    def build(e, tmp) -> list[str]:
        (tmp / name).write_bytes(content)
        return ["sample", "--checkpoint", str(e["teacher"]), "--output", str(tmp / name), "--steps", "2"]
    return build


CASES = {
    "shaper num_candidates 0": (_shaped("--trainer.callbacks.num_candidates=0"),
                                "TrajectoryShaper: num_candidates (K) must be >= 1, got 0."),
    "shaper selection_temperature 0": (
        _shaped("--trainer.callbacks.policy=argmin", "--trainer.callbacks.selection_temperature=0"),
        "TrajectoryShaper: selection_temperature must be > 0, got 0.0"),
    "shaper switch_time 1.5": (_shaped("--trainer.callbacks.policy=argmin", "--trainer.callbacks.switch_time=1.5"),
                               "TrajectoryShaper: switch_time must lie in [0, 1], got 1.5."),
    "shaper shape_from -0.5": (_shaped("--trainer.callbacks.shape_from=-0.5"),
                               "TrajectoryShaper: shape_from must lie in [0, 1], got -0.5."),
    "sample num_samples 0": (_sample("--num_samples", "0"), "num_samples must be at least 1, got 0: pass --num_samples 1 or more."),
    "sample step_sizes not summing to 1": (_sample("--step_sizes", "1/2,1/4"),
                                           "step sizes must be positive and sum to 1, got [0.5, 0.25]"),
    "sample step_sizes and steps disagree": (_sample("--step_sizes", "1/2,1/2", "--steps", "4"),
                                             "--steps 4 but 2 --step_sizes: give one size per step, or drop --steps."),
    "sample step_sizes not fractions": (_sample("--step_sizes", "half,half"), "expected comma-separated fractions"),
    "sample batch_size -4": (_sample("--batch_size", "-4"), "batch_size must be at least 1, got -4: pass --batch_size 1 or more."),
    "sample output .ckpt": (lambda e, tmp: ["sample", "--checkpoint", str(e["teacher"]), "--output", str(tmp / "model.ckpt")],
                            "a .ckpt path is a checkpoint. Write the samples to a .jsonl file"),
    "sample output over a .pt checkpoint": (
        lambda e, tmp: _sample_over("model.pt", e["teacher"].read_bytes())(e, tmp),
        "Refusing to write samples over "),
    "sample output over a file without extension": (
        _sample_over("notes", b"my notes\n"), "notes: it exists and is not a sample file"),
    "sample device without the machine's": (_sample("--device", "cuda:99"), "--device cuda:99: this machine has "),
    "sample device unknown": (_sample("--device", "gpu0"), "--device 'gpu0' is not a device: use cpu, cuda or cuda:N."),
    "evaluate max_tokens 0": (lambda e, tmp: ["evaluate", str(e["samples"]), "--judges", "oracle", "--max_tokens", "0"],
                              "--max_tokens must be at least 1, got 0: the judge scores the first --max_tokens tokens"),
    "evaluate max_tokens -5": (lambda e, tmp: ["evaluate", str(e["samples"]), "--max_tokens", "-5"],
                               "--max_tokens must be at least 1, got -5"),
    "evaluate unknown key in the language card": (
        _language_card_with("num_topics"), "crafted.jsonl, line 1: unknown key 'num_topics' in data.hmm"),
    "fit data batch_size -1": (_teacher_fit("--data.init_args.batch_size=-1"),
                               "SyntheticDataModule: batch_size must be at least 1, got -1: set data.init_args.batch_size"),
    "corpus not UTF-8": (
        lambda e, tmp: tiny_fit_args("text_tiny.yaml", tmp, *TINY_BACKBONE, f"--data.init_args.corpus={e['root'] / 'latin1.txt'}",
                                     f"--data.init_args.cache_dir={tmp / 'cache'}"),
        "latin1.txt is not valid UTF-8: byte 0xe9 at byte offset 22 (line 3). Convert the file to UTF-8"),
    "evaluate malformed line": (lambda e, tmp: ["evaluate", str(e["root"] / "malformed.jsonl"), "--judges", "oracle"],
                                "malformed.jsonl, line 4: not valid JSON"),
    "evaluate a file of two languages": (
        _two_languages, "mixed.jsonl, line 3: its data card ('data') differs from line 1's: the file mixes samples"),
    "evaluate text judge on synthetic samples": (
        lambda e, tmp: ["evaluate", str(e["samples"]), "--judges", "smollm2"],
        "samples.jsonl come from a synthetic language, which the text judge 'smollm2' cannot score (it would read "
        "token ids as words): judge them with --judges oracle."),
    "evaluate oracle judge on text samples": (
        lambda e, tmp: ["evaluate", str(e["root"] / "text_samples.jsonl"), "--judges", "oracle"],
        "The oracle judge scores samples of a synthetic language only, but the samples of "),
    "sample random .ckpt": (lambda e, tmp: ["sample", "--checkpoint", str(e["root"] / "random.ckpt"), "--output", str(tmp / "s.jsonl")],
                            "random.ckpt is not a readable checkpoint (it is not a whole zip archive"),
    "sample bit-flipped .ckpt": (
        lambda e, tmp: ["sample", "--checkpoint", str(e["root"] / "flipped.ckpt"), "--output", str(tmp / "s.jsonl")],
        "flipped.ckpt is not a readable checkpoint (its member "),
    "resume bit-flipped .ckpt": (lambda e, tmp: _teacher_fit(f"--ckpt_path={e['root'] / 'flipped.ckpt'}")(e, tmp),
                                 "does not match its CRC-32 checksum"),
    "resume truncated .ckpt": (lambda e, tmp: _teacher_fit(f"--ckpt_path={e['root'] / 'truncated.ckpt'}")(e, tmp),
                               "truncated.ckpt is not a readable checkpoint"),
    "resume another kind": (
        lambda e, tmp: tiny_fit_args("synthetic_student.yaml", tmp, *TINY_SYNTHETIC, "--model.init_args.teacher_steps=8",
                                     f"--model.init_args.teacher_checkpoint={e['teacher']}", f"--ckpt_path={e['teacher']}"),
        "is a 'teacher' checkpoint, but this run trains a StudentModule ('student'): resume from a 'student' checkpoint"),
    "resume another language": (lambda e, tmp: _teacher_fit(f"--ckpt_path={e['teacher']}", "--data.init_args.language_seed=1")(e, tmp),
                                "was trained on other data than this run's (hmm.seed: 0 -> 1): resume with the data"),
    "resume another seq_len": (lambda e, tmp: _teacher_fit(f"--ckpt_path={e['teacher']}", "--data.init_args.seq_len=8")(e, tmp),
                               "was trained on other data than this run's (seq_len: 16 -> 8)"),
    "resume after the teacher changed": (
        lambda e, tmp: tiny_fit_args("synthetic_student.yaml", tmp, *TINY_SYNTHETIC, "--model.init_args.teacher_steps=8",
                                     f"--model.init_args.teacher_checkpoint={e['root'] / 'teacher_copy.ckpt'}",
                                     f"--ckpt_path={e['student']}", steps=3),
        "teacher_copy.ckpt is not the one this StudentModule was trained with (its weights changed since). Resume with "
        "the original teacher file"),
    "shape a teacher": (_teacher_fit("--trainer.callbacks+=TrajectoryShaper", "--trainer.callbacks.compass=oracle"),
                        "training step made no jump through its `jump_policy`, so there is nothing to shape"),
    "fit over a run's last.ckpt": (
        lambda e, tmp: tiny_fit_args("synthetic_tiny.yaml", e["root"] / "teacher", *TINY_BACKBONE, *TINY_SYNTHETIC),
        "checkpoints/last.ckpt already exists: this run would write over it. Resume that run with --ckpt_path"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_status_2(case, env, tmp_path, monkeypatch, capsys):
    build, expected = CASES[case]
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    with pytest.raises(SystemExit) as info:
        main(build(env, tmp_path))
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("tsdfm: error:")]
    assert len(errors) == 1 and errors[0] == err.rstrip("\n").splitlines()[-1], err
    assert expected in errors[0], errors[0]


def test_debug_shows_the_traceback(env, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    with pytest.raises(ValueError, match="num_samples must be at least 1"):
        main(["sample", "--debug", "--checkpoint", str(env["teacher"]), "--output", str(tmp_path / "s.jsonl"),
              "--num_samples", "0"])


def test_a_model_seed_alone_fits(env, tmp_path, monkeypatch):
    """The model's and the data's ``seed`` hyper-parameters may differ (Lightning's logger merge refused it)."""
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(tiny_fit_args("synthetic_tiny.yaml", tmp_path, *TINY_BACKBONE, *TINY_SYNTHETIC, "--model.init_args.seed=1"))
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 2 and saved["hyper_parameters"]["seed"] == 1


def test_fit_overwrite_writes_over_last_ckpt(env, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    run = tmp_path / "run"
    main(tiny_fit_args("synthetic_tiny.yaml", run, *TINY_BACKBONE, *TINY_SYNTHETIC, steps=1))
    main(tiny_fit_args("synthetic_tiny.yaml", run, *TINY_BACKBONE, *TINY_SYNTHETIC, "--overwrite", steps=2))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]  # not beside it as last-v1.ckpt
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2


def test_a_student_warns_on_a_step_count_it_was_not_trained_for(env, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    for steps, warned in (("4", False), ("3", True), ("16", True)):
        main(["sample", "--checkpoint", str(env["student"]), "--output", str(tmp_path / "s.jsonl"), "--steps", steps,
              "--num_samples", "2"])
        warnings = [line for line in capsys.readouterr().err.splitlines() if "not trained" in line or "trained for" in line]
        assert len(warnings) == int(warned), warnings
        if warned:
            assert warnings[0].startswith("tsdfm: warning: this student was trained for power-of-two step counts 1..8")
            assert f"not for {steps} steps" in warnings[0]
    for sizes, warned in (("1/2,1/4,1/8,1/8", False), ("1/3,1/3,1/3", True), ("1/16,15/16", True)):
        main(["sample", "--checkpoint", str(env["student"]), "--output", str(tmp_path / "s.jsonl"), "--step_sizes",
              sizes, "--num_samples", "2"])
        warnings = [line for line in capsys.readouterr().err.splitlines() if "trained for step sizes" in line]
        assert len(warnings) == int(warned), warnings
    assert read_jsonl(tmp_path / "s.jsonl").meta["step_sizes"] == [1 / 16, 15 / 16]


def test_sample_writes_over_a_sample_file_or_an_empty_one_and_over_another_file_only_with_overwrite(env, tmp_path,
                                                                                                  monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    checkpoint = tmp_path / "model.pt"
    shutil.copy(env["teacher"], checkpoint)
    before = checkpoint.read_bytes()
    for output in (checkpoint, tmp_path / "README"):
        if not output.exists():
            output.write_text("not samples\n")
        with pytest.raises(SystemExit):
            main(["sample", "--checkpoint", str(env["teacher"]), "--output", str(output), "--steps", "2"])
        assert "is not a sample file" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before  # the checkpoint is whole
    shutil.copy(env["samples"], tmp_path / "old.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    for output in (tmp_path / "old.jsonl", tmp_path / "empty.jsonl"):
        main(["sample", "--checkpoint", str(env["teacher"]), "--output", str(output), "--steps", "2", "--num_samples", "2"])
        assert len(read_jsonl(output).texts) == 2
    main(["sample", "--checkpoint", str(env["teacher"]), "--output", str(tmp_path / "README"), "--steps", "2",
          "--num_samples", "2", "--overwrite"])
    assert len(read_jsonl(tmp_path / "README").texts) == 2
