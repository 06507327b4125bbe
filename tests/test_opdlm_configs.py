"""configs/text_opdlm.yaml fits through `tsdfm fit` (after a causal LM of ar_judge_text_tiny.yaml on the same data),
for OPDLM and the from-scratch arm, and `tsdfm sample` draws from the student and from its causal teacher."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from lightning_helpers import TINY_BACKBONE, tiny_fit_args

from lightning_tsdfm.cli import main

pytest.importorskip("tsdfm_opdlm", reason="the OPDLM plugin is installed by `make install`")

WORDS = "and the light was good in the beginning of days water earth said let there be".split()


def test_text_opdlm_config_fits_and_samples(tmp_path, monkeypatch):
    corpus = tmp_path / "my.txt"
    corpus.write_text("\n\n".join(" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(40)) for i in range(30)))
    data = [f"--data.init_args.corpus={corpus}", f"--data.init_args.cache_dir={tmp_path / 'cache'}",
            "--data.init_args.bpe_vocab_size=300", "--data.init_args.seq_len=16", "--data.init_args.batch_size=4"]
    monkeypatch.setattr(sys, "argv", ["tsdfm"])
    main(tiny_fit_args("ar_judge_text_tiny.yaml", tmp_path / "causal", *TINY_BACKBONE, *data, steps=2))
    teacher = tmp_path / "causal" / "checkpoints" / "last.ckpt"
    for arm, flags in {"opdlm": [], "scratch": ["--model.init_args.init=scratch", "--model.init_args.completions=data",
                                                "--model.init_args.states=random", "--model.init_args.targets=data"]}.items():
        main(tiny_fit_args("text_opdlm.yaml", tmp_path / arm, f"--model.init_args.teacher_checkpoint={teacher}",
                           *data, *flags, steps=2))
        saved = torch.load(tmp_path / arm / "checkpoints" / "last.ckpt", weights_only=False)
        assert saved["global_step"] == 2 and saved["tsdfm"]["kind"] == "opdlm"
    student = tmp_path / "opdlm" / "checkpoints" / "last.ckpt"
    for sampler in ("confidence", "teacher"):
        out = tmp_path / f"{sampler}.jsonl"
        main(["sample", "--checkpoint", str(student), "--steps", "16", "--num_samples", "3", "--sampler", sampler,
              "--output", str(out)])
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 3 and all(len(r["tokens"]) == 16 for r in rows) and rows[0]["sampler"] == sampler
