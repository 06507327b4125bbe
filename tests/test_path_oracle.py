"""The exact data path of a hidden-Markov language: the oracle energy and posterior against enumeration, and
the oracle compass wherever a compass is accepted."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import StudentModule, SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.cli import evaluate, main
from lightning_tsdfm.data import HiddenMarkovLanguage, HMMSpec
from lightning_tsdfm.data.path_oracle import OracleCompass, OracleDenoiser, PathOracle
from lightning_tsdfm.data.textlike import TextlikeHMMSpec
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source
from lightning_tsdfm.samples_io import SampleSet, generate_samples, read_jsonl, write_jsonl
from lightning_tsdfm.sampling import denoiser_step, sample_chain, sample_first_hitting
from lightning_tsdfm.shaping import TrajectoryShaper
from lightning_tsdfm.shaping.compasses import load_matching_compass

LANGUAGES = [HMMSpec(vocab_size=3, num_states=2, branching=1, emissions_per_state=1, smoothing=0.1, seed=1),
             TextlikeHMMSpec(vocab_size=6, num_topics=2, num_syntax=2, function_states=1, function_vocab=2,
                             topic_stay=0.8, branching=1, emissions_per_state=2, smoothing=0.05, seed=1)]
LEN = 3


def enumerated_path(lang: HiddenMarkovLanguage, path: MixturePath, x_t: torch.Tensor, t: float):
    """(log p_t(x_t), p(x1^i | x_t) [L, V]) by summing over every data sequence x1."""
    v = lang.vocab_size
    kappa = path.scheduler.kappa(torch.tensor(t, dtype=torch.float64)).item()

    def p_noise(y: int, x: int) -> float:  # p_t(x_t^i = y | x1^i = x)
        if path.source.name == "mask":
            return 1 - kappa if y == v else kappa * (y == x)
        return kappa * (y == x) + (1 - kappa) / v

    sequences = list(itertools.product(range(v), repeat=len(x_t)))
    p_data = lang.log_likelihood(torch.tensor(sequences)).exp()
    weights = torch.tensor([p_data[j].item() * math.prod(p_noise(y, x) for y, x in zip(x_t.tolist(), s))
                            for j, s in enumerate(sequences)], dtype=torch.float64)
    posterior = torch.zeros(len(x_t), v, dtype=torch.float64)
    for w, s in zip(weights, sequences):
        for i, x in enumerate(s):
            posterior[i, x] += w
    return math.log(weights.sum()), posterior / weights.sum()


@given(language=st.sampled_from(LANGUAGES), source=st.sampled_from(["mask", "uniform"]), t=st.floats(0.0, 0.95),
       exponent=st.sampled_from([1.0, 2.0]), seed=st.integers(0, 1000))
def test_energy_and_posterior_equal_enumeration(language, source, t, exponent, seed):
    lang = HiddenMarkovLanguage(language)
    path = MixturePath(make_source(source, lang.vocab_size), PolynomialScheduler(exponent))
    g = torch.Generator().manual_seed(seed)
    time = torch.tensor([t], dtype=torch.float64)
    x_t = path.sample(lang.sample(1, LEN, g), time, g)
    oracle = PathOracle(lang, path)
    log_marginal, posterior = enumerated_path(lang, path, x_t[0], t)
    assert oracle.log_terms(x_t, time).sum().item() == pytest.approx(log_marginal, rel=1e-9, abs=1e-9)
    assert torch.allclose(oracle.posterior(x_t, time)[0], posterior, atol=1e-10)
    compass = OracleCompass(oracle, LEN)
    assert compass.energies(x_t, time).mean().item() == pytest.approx(-log_marginal / LEN, rel=1e-5)


def test_at_t_one_the_energy_is_the_data_nll_and_the_posterior_is_the_data():
    lang = HiddenMarkovLanguage(LANGUAGES[1])
    path = MixturePath(make_source("mask", lang.vocab_size))
    x1 = lang.sample(5, 8, torch.Generator().manual_seed(0))
    oracle, one = PathOracle(lang, path), torch.ones(5)
    assert torch.allclose(oracle.log_terms(x1, one).sum(-1), lang.log_likelihood(x1))
    assert torch.equal(oracle.posterior(x1, one).argmax(-1), x1)
    assert torch.allclose(OracleDenoiser(oracle)(x1, one).exp().sum(-1), torch.ones(5, 8))


# ---- the oracle compass wherever a compass is accepted

VOCAB, SEQ = 8, 8
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)


def _datamodule() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=4, seq_len=SEQ, num_train=8, num_val=4, batch_size=4)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    teacher = TeacherModule(VOCAB, SEQ, source="mask", backbone=BACKBONE, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    return fit_checkpoint(teacher, tmp_path_factory.mktemp("teacher"), 3, _datamodule())


def test_oracle_compass_shapes_sampling(teacher_ckpt, tmp_path):
    blind = generate_samples(teacher_ckpt, 4, 64, seed=3, progress=False)
    shaped = generate_samples(teacher_ckpt, 4, 64, seed=3, progress=False, shaping={"compass": "oracle", "num_candidates": 8})
    judge = HiddenMarkovLanguage(_datamodule().spec)
    assert judge.log_likelihood(shaped.tokens).mean() > judge.log_likelihood(blind.tokens).mean()
    out = tmp_path / "s.jsonl"
    main(["sample", "--checkpoint", str(teacher_ckpt), "--output", str(out), "--steps", "4", "--num_samples", "4",
          "--shaped", "oracle", "--k", "2"])
    assert read_jsonl(out).meta["sampling_shaping"]["compass"] == "oracle"


def test_oracle_compass_shapes_distillation(teacher_ckpt, tmp_path):
    torch.manual_seed(0)
    student = StudentModule(str(teacher_ckpt), VOCAB, SEQ, teacher_steps=8, ema_decay=0.5, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    trainer = quick_trainer(tmp_path, 2, [TrajectoryShaper("oracle", num_candidates=4)])
    trainer.fit(student, datamodule=_datamodule())
    assert trainer.callback_metrics["shaping/energy_chosen"] <= trainer.callback_metrics["shaping/energy_candidates"]


def test_oracle_compass_needs_a_synthetic_language(teacher_ckpt):
    teacher = TeacherModule(VOCAB, SEQ)
    teacher.data_card = {"kind": "text", "vocab_size": VOCAB, "seq_len": SEQ}
    with pytest.raises(ValueError, match="synthetic language"):
        load_matching_compass("oracle", teacher)
    teacher.data_card = {"kind": "synthetic", "vocab_size": 5, "seq_len": SEQ,
                         "hmm": HMMSpec(vocab_size=5, num_states=4).to_dict()}
    with pytest.raises(ValueError, match="vocabulary"):
        load_matching_compass("oracle", teacher)


@pytest.mark.parametrize("exponent, steps", [(1.0, 6), (2.0, 3)])
def test_first_hitting_sampler_draws_the_ancestral_distribution(exponent, steps):
    """With the exact posterior as the denoiser both samplers target the same law; their empirical laws over
    all V^L sequences agree within sampling noise, and the first-hitting one needs at most L forwards."""
    lang = HiddenMarkovLanguage(LANGUAGES[0])
    path = MixturePath(make_source("mask", lang.vocab_size), PolynomialScheduler(exponent))
    denoiser, calls = OracleDenoiser(PathOracle(lang, path)), []

    def counted(x, t, h):
        calls.append(1)
        return denoiser(x, t, h)

    n = 20_000
    ancestral = sample_chain(denoiser_step(denoiser, path, BlindJump(temperature=0.7)), path.source.sample, n, LEN, steps,
                             torch.Generator().manual_seed(0))
    first = sample_first_hitting(counted, path, BlindJump(temperature=0.7), n, LEN, steps, torch.Generator().manual_seed(1))
    assert len(calls) <= min(LEN, steps)

    def law(x):
        index = (x * torch.tensor([lang.vocab_size ** i for i in range(LEN)])).sum(-1)
        return torch.bincount(index, minlength=lang.vocab_size ** LEN).double() / len(x)

    assert 0.5 * (law(ancestral) - law(first)).abs().sum() < 0.03  # total variation; two runs of one law: ~0.01


def test_first_hitting_sampler_refuses_what_it_cannot_draw(teacher_ckpt):
    path = MixturePath(make_source("uniform", 3))
    with pytest.raises(ValueError, match="mask source"):
        sample_first_hitting(lambda x, t, h: torch.zeros(*x.shape, 3), path, BlindJump(), 2, 3, 4)
    with pytest.raises(ValueError, match="blind jumps"):
        generate_samples(teacher_ckpt, 4, 2, progress=False, sampler="first_hitting", shaping={"compass": "oracle"})
    samples = generate_samples(teacher_ckpt, 1024, 4, progress=False, sampler="first_hitting")
    assert samples.tokens.shape == (4, SEQ) and samples.tokens.max() < VOCAB


def test_evaluate_judges_each_file_with_its_own_language(tmp_path):
    """Two sample files of two synthetic languages: each gets its own oracle (the cache is keyed by language)."""
    rows = []
    for seed in (0, 1):
        spec = HMMSpec(vocab_size=VOCAB, num_states=4, seed=seed)
        tokens = HiddenMarkovLanguage(spec).sample(16, SEQ, torch.Generator().manual_seed(0))
        card = {"kind": "synthetic", "vocab_size": VOCAB, "seq_len": SEQ, "hmm": spec.to_dict()}
        write_jsonl(SampleSet(tokens, ["x"] * 16, {"steps": 1, "seed": 0, "data": card}), tmp_path / f"{seed}.jsonl")
        rows.append(-HiddenMarkovLanguage(spec).log_likelihood(tokens).sum().item() / tokens.numel())
    scored = evaluate([str(tmp_path / "0.jsonl"), str(tmp_path / "1.jsonl")], judges=["oracle"])
    assert [r["gen_ppl"] for r in scored] == pytest.approx([math.exp(r) for r in rows], rel=1e-9)
