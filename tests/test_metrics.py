"""Generative perplexity, unigram entropy, evaluate_samples and judge construction."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_tsdfm.data import HiddenMarkovLanguage, HMMSpec
from lightning_tsdfm.metrics import GenerativePerplexity, OracleJudge, UnigramEntropy, build_judge, unigram_entropy
from lightning_tsdfm.metrics.evaluate import evaluate_samples
from lightning_tsdfm.metrics.generative_perplexity import nll_stderr
from lightning_tsdfm.metrics.judges import run_label

SPEC = HMMSpec(vocab_size=8, num_states=4, branching=2, emissions_per_state=2, smoothing=0.05)


def test_generative_perplexity_corpus_vs_sample():
    nll = torch.tensor([1.0, 6.0])
    count = torch.tensor([1.0, 2.0])
    corpus = GenerativePerplexity("corpus")
    corpus.update(nll, count)
    assert corpus.compute().item() == pytest.approx(math.exp(7 / 3))
    sample = GenerativePerplexity("sample")
    sample.update(nll, count)
    assert sample.compute().item() == pytest.approx((math.exp(1.0) + math.exp(3.0)) / 2)
    assert GenerativePerplexity().reduction == "corpus"


def test_generative_perplexity_accumulates_updates():
    metric = GenerativePerplexity("corpus")
    metric.update(torch.tensor([2.0]), torch.tensor([4]))
    metric.update(torch.tensor([3.0, 1.0]), torch.tensor([2, 2]))
    assert metric.compute().item() == pytest.approx(math.exp(6 / 8))
    per_sample = GenerativePerplexity("sample")
    per_sample.update(torch.tensor([2.0]), torch.tensor([4]))
    per_sample.update(torch.tensor([3.0, 1.0]), torch.tensor([2, 2]))
    assert per_sample.compute().item() == pytest.approx((math.exp(0.5) + math.exp(1.5) + math.exp(0.5)) / 3)
    metric.reset()
    metric.update(torch.tensor([0.0]), torch.tensor([5]))
    assert metric.compute().item() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_generative_perplexity_rejects_non_finite_nll(bad):
    metric = GenerativePerplexity()
    with pytest.raises(ValueError, match="non-finite"):
        metric.update(torch.tensor([1.0, bad]), torch.tensor([2, 2]))


def test_generative_perplexity_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        GenerativePerplexity("median")


def test_unigram_entropy_values():
    ids = torch.tensor([[5, 5, 5, 5], [0, 1, 2, 3], [0, 0, 1, 1], [7, 0, 7, 7]])
    h = unigram_entropy(ids)
    assert h.dtype == torch.float64 and h.shape == (4,)
    expected = [0.0, math.log(4), math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))]
    assert h.tolist() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("length", [1, 3, 16])
def test_unigram_entropy_constant_and_distinct(length):
    assert unigram_entropy(torch.full((2, length), 4)).tolist() == [0.0, 0.0]
    distinct = torch.stack([torch.arange(length), torch.arange(length).flip(0) + 10])
    assert unigram_entropy(distinct).tolist() == pytest.approx([math.log(length)] * 2, abs=1e-12)


def test_unigram_entropy_metric_is_the_mean():
    metric = UnigramEntropy()
    metric.update(torch.tensor([[1, 1], [1, 2]]))
    metric.update(torch.tensor([[3, 4]]))
    assert metric.compute().item() == pytest.approx(2 * math.log(2) / 3)


@pytest.mark.parametrize("reduction", ["corpus", "sample"])
def test_evaluate_samples_with_oracle(reduction):
    lang = HiddenMarkovLanguage(SPEC)
    tokens = lang.sample(16, 6, torch.Generator().manual_seed(0))
    scores = evaluate_samples(OracleJudge(SPEC), tokens, reduction=reduction)
    assert set(scores) == {"judge", "gen_ppl", "nll_stderr", "entropy", "n_samples"}
    assert scores["judge"] == "oracle" and scores["n_samples"] == 16
    nll = -lang.log_likelihood(tokens)
    expected = math.exp(nll.sum().item() / (16 * 6)) if reduction == "corpus" else torch.exp(nll / 6).mean().item()
    assert scores["gen_ppl"] == pytest.approx(expected, rel=1e-9)
    assert scores["entropy"] == pytest.approx(unigram_entropy(tokens).mean().item(), rel=1e-6)
    assert scores["nll_stderr"] == pytest.approx(nll_stderr(nll, torch.full((16,), 6.0)), rel=1e-9)


def test_evaluate_samples_oracle_prefers_language_samples():
    lang = HiddenMarkovLanguage(SPEC)
    real = lang.sample(64, 8, torch.Generator().manual_seed(0))
    noise = torch.randint(0, 8, (64, 8), generator=torch.Generator().manual_seed(1))
    judge = OracleJudge(SPEC)
    assert evaluate_samples(judge, real)["gen_ppl"] < evaluate_samples(judge, noise)["gen_ppl"]


class _LengthJudge:
    """A text judge: NLL = number of characters, count = number of words."""

    name = "length"
    wants = "text"

    def __init__(self) -> None:
        self.seen = None

    def score(self, samples):
        self.seen = list(samples)
        return torch.tensor([float(len(s)) for s in samples]), torch.tensor([float(len(s.split())) for s in samples])


def test_evaluate_samples_with_text_judge():
    judge = _LengthJudge()
    tokens = torch.tensor([[1, 2], [3, 3]])
    scores = evaluate_samples(judge, tokens, ["ab cd", "efgh"])
    assert judge.seen == ["ab cd", "efgh"]
    assert scores["gen_ppl"] == pytest.approx(math.exp(9 / 3))
    assert scores["entropy"] == pytest.approx(math.log(2) / 2)
    with pytest.raises(ValueError, match="text"):
        evaluate_samples(judge, tokens, None)


def test_evaluate_samples_rejects_empty():
    with pytest.raises(ValueError, match="No samples"):
        evaluate_samples(OracleJudge(SPEC), torch.zeros(0, 4, dtype=torch.long))


def test_build_oracle_judge_from_card():
    card = {"kind": "synthetic", "vocab_size": 8, "seq_len": 6, "hmm": SPEC.to_dict()}
    judge = build_judge("oracle", card)
    assert isinstance(judge, OracleJudge) and judge.spec == SPEC


@pytest.mark.parametrize("card", [{"kind": "text", "vocab_size": 100, "seq_len": 32}, None, {}])
def test_oracle_judge_refuses_non_synthetic_data(card):
    with pytest.raises(ValueError) as info:
        build_judge("oracle", card)
    message = str(info.value)
    assert "synthetic" in message
    assert "ar:" in message or "smollm2" in message  # says what to use instead
    if card:
        assert "text" in message


@pytest.mark.parametrize("spec", ["nonsense", "", "Oracle", "hf", "ar"])
def test_unknown_judge(spec):
    with pytest.raises(ValueError, match="Unknown judge"):
        build_judge(spec, {"kind": "synthetic", "hmm": SPEC.to_dict()})


def test_nll_stderr_matches_the_spread_of_repeated_estimates():
    """The ratio-estimator SE predicts the spread of log-perplexity over independent sample sets."""
    g = torch.Generator().manual_seed(0)
    count = torch.full((200,), 16.0)
    estimates, predicted = [], []
    for _ in range(300):
        nll = count * 2.0 + torch.randn(200, generator=g, dtype=torch.float64) * 3.0
        estimates.append((nll.sum() / count.sum()).item())
        predicted.append(nll_stderr(nll, count))
    observed = torch.tensor(estimates).std().item()
    assert abs(observed / torch.tensor(predicted).mean().item() - 1) < 0.15  # 3 / sqrt(200) / 16 in both
    assert math.isnan(nll_stderr(torch.ones(1), torch.ones(1)))


@pytest.mark.parametrize("path, label", [
    ("runs/corpus_ar_judge/checkpoints/last.ckpt", "corpus_ar_judge"),
    ("runs/ar_judge_text/checkpoints/epoch=0-step=250.ckpt", "ar_judge_text/epoch=0-step=250"),
    ("/tmp/judge.ckpt", "judge"),
])
def test_causal_lm_judges_are_named_by_their_run(path, label):
    """Two causal-LM judges never share a label in result rows (both used to read ``ar:last.ckpt``)."""
    assert run_label(path) == label
