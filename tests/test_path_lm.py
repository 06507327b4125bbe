"""The path LM (a causal LM of the noised states): its energy is the state oracle's -log p_t(x_t) when its data
conditionals are exact, it learns them by maximum likelihood, and it is accepted wherever a compass is, with the
source and schedule of the model it shapes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from lightning_helpers import quick_trainer
from test_importance_selection import LANGUAGE
from test_shaper import LEN, SMALL, VOCAB, _datamodule, _distil, teacher_ckpt  # noqa: F401 (fixture)

from lightning_tsdfm import PathLMModule, TrajectoryShaper
from lightning_tsdfm.data import HiddenMarkovLanguage
from lightning_tsdfm.data.path_oracle import PathOracle
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.modules.path_lm import path_log_terms
from lightning_tsdfm.paths import MixturePath, PolynomialScheduler, make_source
from lightning_tsdfm.shaping import GuidedJump, make_selection
from lightning_tsdfm.shaping.compasses import compass_kind, load_matching_compass


def _exact_data_conditionals(oracle: PathOracle, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """log p(x1^i = y | x_t^{<i}) [B, L, V] from the oracle: p_t(x_t^i = y | x_t^{<i}) = kappa p(x1^i = y | .) +
    (1 - kappa) p_source(y), solved for p(x1^i = y | .) with each y put at position i in turn."""
    vocab = oracle.language.vocab_size
    kappa = oracle.path.scheduler.kappa(t.double())[:, None]
    columns = []
    for y in range(vocab):
        for_y = torch.stack([oracle.log_terms(torch.cat([x_t[:, :i], torch.full_like(x_t[:, :1], y), x_t[:, i + 1:]], 1), t)[:, i]
                             for i in range(x_t.shape[1])], 1)
        columns.append(((for_y.exp() - (1 - kappa) * oracle.path.source.log_prob(torch.full_like(x_t, y)).exp()) / kappa).log())
    return torch.stack(columns, -1)


@given(source=st.sampled_from(["mask", "uniform"]), t=st.floats(0.05, 0.95), exponent=st.sampled_from([1.0, 2.0]),
       seed=st.integers(0, 1000))
def test_exact_data_conditionals_give_the_state_oracle_energy(source, t, exponent, seed):
    language = HiddenMarkovLanguage(LANGUAGE)
    path = MixturePath(make_source(source, language.vocab_size), PolynomialScheduler(exponent))
    oracle = PathOracle(language, path)
    times = torch.full((4,), t, dtype=torch.float64)
    x_t = path.sample(language.sample(4, 5, torch.Generator().manual_seed(seed)), times, torch.Generator().manual_seed(seed))
    exact = _exact_data_conditionals(oracle, x_t, times)
    terms = path_log_terms(exact, x_t, path.scheduler.kappa(times), path.source.log_prob(x_t))
    torch.testing.assert_close(terms.double(), oracle.log_terms(x_t, times), atol=1e-4, rtol=1e-4)


@given(source=st.sampled_from(["mask", "uniform"]), kappa=st.floats(0.01, 0.99), seed=st.integers(0, 1000))
def test_the_path_terms_are_a_law_over_the_next_state_token(source, kappa, seed):
    vocab = 5
    log_p_x1 = torch.log_softmax(torch.randn(1, 1, vocab, generator=torch.Generator().manual_seed(seed)), -1)
    ids = torch.arange(make_source(source, vocab).input_vocab_size)  # every value x_t^i can take, the mask included
    log_source = make_source(source, vocab).log_prob(ids[:, None])
    terms = path_log_terms(log_p_x1.expand(len(ids), 1, vocab), ids[:, None], torch.full((len(ids),), kappa), log_source)
    assert terms.double().exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def _path_lm_ckpt(root, source="mask", exponent=1.0, steps=2, **data) -> str:
    torch.manual_seed(0)
    lm = PathLMModule(VOCAB, LEN, source=source, scheduler_exponent=exponent, backbone=SMALL,
                      optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    trainer = quick_trainer(root, steps)
    trainer.fit(lm, datamodule=_datamodule(**data))
    trainer.save_checkpoint(root / "path_lm.ckpt")
    return str(root / "path_lm.ckpt")


def test_training_lowers_the_cross_entropy_of_the_clean_tokens(tmp_path):
    torch.manual_seed(0)
    lm = PathLMModule(VOCAB, LEN, backbone=SMALL, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    data = _datamodule(num_train=256, num_val=64, batch_size=32)
    data.setup("fit")
    x1 = next(iter(data.val_dataloader()))
    before = lm._loss(x1, torch.Generator().manual_seed(0)).item()
    quick_trainer(tmp_path, 40).fit(lm, datamodule=data)
    assert lm._loss(x1, torch.Generator().manual_seed(0)).item() < before - 0.1


def test_a_path_lm_is_a_state_compass_of_its_own_kind(teacher_ckpt, source, tmp_path):
    teacher = load_module(teacher_ckpt, expected_kind="teacher")
    path = _path_lm_ckpt(tmp_path, source)
    compass = load_matching_compass(path, teacher)
    assert (compass.kind, compass.scores, compass_kind(path)) == ("path-lm", "state", "path-lm")
    states = teacher.path.sample(torch.randint(0, VOCAB, (3, LEN)), torch.full((3,), 0.5))
    energies = compass.energies(states, torch.full((3,), 0.5))
    assert energies.shape == (3, LEN) and torch.isfinite(energies).all()


def test_a_path_lm_of_another_source_schedule_or_language_is_refused(teacher_ckpt, source, tmp_path):
    teacher = load_module(teacher_ckpt, expected_kind="teacher")
    other = "uniform" if source == "mask" else "mask"
    with pytest.raises(ValueError, match="source"):
        load_matching_compass(_path_lm_ckpt(tmp_path / "source", other), teacher)
    with pytest.raises(UserError, match="scheduler_exponent"):
        load_matching_compass(_path_lm_ckpt(tmp_path / "schedule", source, exponent=2.0), teacher)
    with pytest.raises(UserError, match="other data"):
        load_matching_compass(_path_lm_ckpt(tmp_path / "language", source, language_seed=1), teacher)


def test_one_candidate_with_a_path_lm_is_the_blind_jump(teacher_ckpt, source, tmp_path):
    teacher = load_module(teacher_ckpt, expected_kind="teacher")
    compass = load_matching_compass(_path_lm_ckpt(tmp_path, source), teacher)
    x_t = teacher.path.sample(torch.randint(0, VOCAB, (4, LEN)), torch.full((4,), 0.25))
    probs = torch.softmax(torch.randn(4, LEN, VOCAB), -1)
    t, h = torch.full((4,), 0.25), torch.full((4,), 0.25)
    guided = GuidedJump(compass.energies, 1, make_selection("importance"))
    blind = BlindJump()(x_t, probs, t, h, teacher.path, torch.Generator().manual_seed(3))
    assert torch.equal(guided(x_t, probs, t, h, teacher.path, torch.Generator().manual_seed(3)), blind)


def test_the_shaper_distils_with_a_path_lm(teacher_ckpt, source, tmp_path):
    shaper = TrajectoryShaper(_path_lm_ckpt(tmp_path, source), num_candidates=4, policy="importance")
    student = _distil(teacher_ckpt, tmp_path / "shaped", shaper=shaper)
    assert shaper.settings()["compass_kind"] == "path-lm"
    assert all(torch.isfinite(p).all() for p in student.parameters())
