"""Energies over whole proposals (a causal LM, the sequence oracle): importance resampling of the denoiser's full
draws toward the energy's joint law, blind bit for bit when the energy has no opinion or K = 1, accepted wherever a
compass is (the callback, guided sampling), and refused with a clear error where it cannot apply."""

from __future__ import annotations

import itertools

import pytest
import torch
from lightning_helpers import quick_trainer
from test_importance_selection import LANGUAGE, LEN as ENUM_LEN, _total_variation
from test_shaper import SMALL, _datamodule, _distil, _same_weights, teacher_ckpt  # noqa: F401 (fixture)

from lightning_tsdfm import CausalLMModule
from lightning_tsdfm.data import HiddenMarkovLanguage
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import MixturePath, make_source
from lightning_tsdfm.samples_io import generate_samples
from lightning_tsdfm.shaping import GuidedJump, TrajectoryShaper, make_selection
from lightning_tsdfm.shaping.energies import CausalLMEnergy, SequenceOracleEnergy, proposal_energy
from lightning_tsdfm.shaping.proposals import Proposals

VOCAB = 8


def _lm_ckpt(root, constant: bool = False, **data):
    torch.manual_seed(0)
    lm = CausalLMModule(VOCAB, 8, backbone=SMALL, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1), start_token=True)
    trainer = quick_trainer(root, 3)
    trainer.fit(lm, datamodule=_datamodule(**data))
    if constant:  # an LM with no opinion: every token equally likely everywhere
        with torch.no_grad():
            lm.net.head.weight.zero_()
            lm.net.head.bias.zero_()
    trainer.save_checkpoint(root / "lm.ckpt")
    return root / "lm.ckpt"


@pytest.fixture(scope="module")
def lm_ckpt(tmp_path_factory):
    return _lm_ckpt(tmp_path_factory.mktemp("lm"))


@pytest.fixture(scope="module")
def constant_lm_ckpt(tmp_path_factory):
    return _lm_ckpt(tmp_path_factory.mktemp("constant_lm"), constant=True)


def _joint_posterior(language: HiddenMarkovLanguage, x_t: list[int], mask_id: int) -> dict[tuple, float]:
    """p(x1 | the revealed tokens of x_t), by enumerating every completion."""
    completions = [x for x in itertools.product(range(language.vocab_size), repeat=len(x_t))
                   if all(v == mask_id or v == c for v, c in zip(x_t, x))]
    log_p = language.log_likelihood(torch.tensor(completions))
    return {x: p.item() for x, p in zip(completions, torch.softmax(log_p, 0))}


@pytest.mark.parametrize("t, x_t", [(0.0, [3, 3, 3]), (0.5, [3, 1, 3])])
def test_sequence_oracle_importance_draws_the_joint_posterior_as_k_grows(t, x_t):
    language = HiddenMarkovLanguage(LANGUAGE)
    path = MixturePath(make_source("mask", language.vocab_size))
    energy = SequenceOracleEnergy(language, ENUM_LEN)
    n = 6000
    state = torch.tensor([x_t]).expand(n, -1)
    flat = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64).expand(n, ENUM_LEN, -1)  # a wrong proposal
    times, steps = torch.full((n,), t, dtype=torch.float64), torch.full((n,), 1.0 - t, dtype=torch.float64)
    law = _joint_posterior(language, x_t, path.source.mask_id)

    def distance(k: int) -> float:
        jump = GuidedJump(energy.energies, k, make_selection("importance"), scores="proposal")
        jump.generator = torch.Generator().manual_seed(1)
        return _total_variation(jump(state, flat, times, steps, path, torch.Generator().manual_seed(0)), law)

    blind, few, many = distance(1), distance(4), distance(64)
    assert blind > 0.2
    assert many < 0.04
    assert many < few < blind


@pytest.mark.parametrize("source", ["mask", "uniform"])
def test_one_candidate_or_an_lm_with_no_opinion_is_the_blind_jump(source, constant_lm_ckpt, lm_ckpt):
    path = MixturePath(make_source(source, VOCAB))
    g = torch.Generator().manual_seed(0)
    x_t = path.sample(torch.randint(0, VOCAB, (16, 8), generator=g), torch.full((16,), 0.3))
    probs = torch.softmax(torch.randn(16, 8, VOCAB, generator=g), -1)
    t, h = torch.full((16,), 0.3), torch.full((16,), 0.25)
    blind = BlindJump()(x_t, probs, t, h, path, torch.Generator().manual_seed(5))
    for checkpoint, k in ((constant_lm_ckpt, 8), (lm_ckpt, 1)):
        energy = proposal_energy(f"ar:{checkpoint}", None, 8)
        jump = GuidedJump(energy.energies, k, make_selection("importance"), scores="proposal")
        jump.generator = torch.Generator().manual_seed(1)
        assert torch.equal(jump(x_t, probs, t, h, path, torch.Generator().manual_seed(5)), blind)


def test_candidates_share_the_draws_where_nothing_moves(lm_ckpt):
    path = MixturePath(make_source("uniform", VOCAB))
    g = torch.Generator().manual_seed(0)
    x_t = torch.randint(0, VOCAB, (4, 8), generator=g)
    probs = torch.softmax(torch.randn(4, 8, VOCAB, generator=g), -1)
    jump = GuidedJump(lambda x, t: torch.zeros(x.shape), 6, make_selection("importance"), scores="proposal")
    jump.generator = torch.Generator().manual_seed(1)
    states, log_q, proposals = jump.propose(x_t, probs, torch.full((4,), 0.2), torch.full((4,), 0.3), path, g)
    proposals = proposals.drawn[:, 0]  # one filler draw: candidate 0's
    moving = (states != x_t).any(0)  # a position moves in every candidate or in none
    assert torch.equal(proposals[:, ~moving], proposals[0:1, ~moving].expand(6, -1))  # shared where nothing moves
    assert torch.equal(torch.where(moving, proposals, x_t), states)  # the state is the proposal where it moves
    assert log_q.shape == (6, 4)


def test_filler_draws_are_shared_by_the_candidates_and_differ_from_each_other():
    path = MixturePath(make_source("mask", VOCAB))
    g = torch.Generator().manual_seed(0)
    x_t = torch.full((4, 8), VOCAB)
    probs = torch.softmax(torch.randn(4, 8, VOCAB, generator=g), -1)
    jump = GuidedJump(lambda x, t: torch.zeros(x.shape), 6, make_selection("importance"), scores="proposal",
                      filler_draws=5)
    jump.generator = torch.Generator().manual_seed(1)
    states, _, proposals = jump.propose(x_t, probs, torch.full((4,), 0.0), torch.full((4,), 0.25), path, g)
    drawn = proposals.drawn  # [K, M, B, L]
    moving = (states != x_t).any(0)
    assert drawn.shape == (6, 5, 4, 8)
    assert torch.equal(drawn[:, :, moving], states[:, None, moving].expand(-1, 5, -1))  # each candidate's reveals
    assert torch.equal(drawn[:, :, ~moving], drawn[:1, :, ~moving].expand(6, -1, -1))  # fillers shared across k
    assert not torch.equal(drawn[0, 0, ~moving], drawn[0, 1, ~moving])  # and drawn anew for each m
    assert proposals.filler_log_q.shape == (5, 4) and (proposals.filler_log_q < 0).all()


def test_filler_draws_estimate_the_marginal_of_what_a_candidate_reveals():
    """E_k = -log (1/M) sum_m p(y_k, f_m) / q(f_m) tends to -log p(y_k) = -log sum_f p(y_k, f) as M grows."""
    language = HiddenMarkovLanguage(LANGUAGE)
    vocab, mask = language.vocab_size, language.vocab_size
    energy = SequenceOracleEnergy(language, ENUM_LEN)
    x_t = torch.full((1, ENUM_LEN), mask)
    moves = torch.tensor([[True, False, False]])
    revealed = torch.arange(vocab)[:, None, None].expand(vocab, 1, ENUM_LEN)  # candidate k reveals token k first
    completions = torch.tensor(list(itertools.product(range(vocab), repeat=ENUM_LEN)))
    joint = language.log_likelihood(completions).double()
    exact = torch.stack([-joint[completions[:, 0] == k].logsumexp(0) for k in range(vocab)])  # -log p(y_k)
    wrong = torch.tensor([0.4, 0.3, 0.3], dtype=torch.float64).expand(1, ENUM_LEN, -1)  # a poor filler proposal

    def error(m: int) -> float:
        g = torch.Generator().manual_seed(m)
        fillers = torch.multinomial(wrong[0], m, replacement=True, generator=g).T[:, None]  # [M, 1, L]
        proposals = Proposals.complete(revealed, moves, fillers, ~moves, x_t, wrong.log())
        estimate = proposals.energies(energy.energies, torch.zeros(1)).double().sum(-1)[:, 0]  # [K]
        return (estimate - exact).abs().max().item()

    assert error(1) > 0.2
    assert error(16384) < 0.05


def test_the_causal_lm_scores_every_token_with_a_start_token(lm_ckpt):
    lm = proposal_energy(f"ar:{lm_ckpt}", None, 8)
    assert isinstance(lm, CausalLMEnergy)
    tokens = torch.randint(0, VOCAB, (5, 8), generator=torch.Generator().manual_seed(0))
    terms = lm.lm.token_log_likelihood(tokens)
    assert terms.shape == (5, 8) and (terms < 0).all()  # the first token is predicted, not free
    assert torch.allclose(-terms.mean(), lm.lm._loss(tokens), atol=1e-5)


def test_the_callback_distils_with_a_causal_lm_energy(teacher_ckpt, lm_ckpt, constant_lm_ckpt, tmp_path):
    blind = _distil(teacher_ckpt, tmp_path / "blind")
    constant = _distil(teacher_ckpt, tmp_path / "constant", shaper=TrajectoryShaper(f"ar:{constant_lm_ckpt}",
                                                                                    num_candidates=4, policy="importance"))
    shaper = TrajectoryShaper(f"ar:{lm_ckpt}", num_candidates=4, policy="importance")
    shaped = _distil(teacher_ckpt, tmp_path / "shaped", shaper=shaper)
    assert _same_weights(blind, constant)
    assert not _same_weights(blind, shaped)
    assert shaper.settings()["compass_kind"] == "causal-lm"
    assert not any("lm" in key for key in shaped.state_dict())


def test_guided_sampling_takes_a_causal_lm_and_records_its_kind(teacher_ckpt, lm_ckpt):
    shaping = {"compass": f"ar:{lm_ckpt}", "num_candidates": 4, "policy": "importance"}
    guided = generate_samples(str(teacher_ckpt), steps=4, num_samples=6, seed=0, shaping=shaping)
    blind = generate_samples(str(teacher_ckpt), steps=4, num_samples=6, seed=0)
    assert guided.meta["sampling_shaping"]["compass_kind"] == "causal-lm"
    assert guided.tokens.shape == blind.tokens.shape
    assert not torch.equal(guided.tokens, blind.tokens)


def test_a_causal_lm_of_other_data_is_refused(teacher_ckpt, tmp_path):
    other = _lm_ckpt(tmp_path, language_seed=7)
    with pytest.raises(UserError, match="other data"):
        _distil(teacher_ckpt, tmp_path / "run", shaper=TrajectoryShaper(f"ar:{other}", num_candidates=4))


def test_proposal_energies_refuse_what_they_cannot_score():
    with pytest.raises(UserError, match="synthetic language"):
        proposal_energy("oracle-sequence", {"kind": "text"}, 8)
    with pytest.raises(UserError, match="decoded text"):
        proposal_energy("smollm2", {"kind": "synthetic"}, 8)
    jump = GuidedJump(lambda x, t: torch.zeros(x.shape), 4, make_selection("importance"), scores="proposal")
    kernel = torch.full((2, 8, VOCAB), 1.0 / VOCAB)
    with pytest.raises(UserError, match="whole proposals"):
        jump.transition(torch.zeros(2, 8, dtype=torch.long), kernel, torch.full((2,), 0.5), torch.full((2,), 0.1))


def test_fillers_drawn_per_candidate_enter_each_candidate_s_energy_even_one_each():
    """With its own filler f_k (log q [K, 1, B]) a candidate's energy is -log p(x_t, y_k, f_k) + log q(f_k): the
    proposal's q no longer cancels between candidates, so it is not passed through."""
    drawn = torch.zeros(2, 1, 1, 4, dtype=torch.long)
    log_q = torch.tensor([[[-1.0]], [[-3.0]]], dtype=torch.float64)  # [K, M, B]
    flat = Proposals(drawn, log_q).energies(lambda x, t: torch.zeros(x.shape), torch.zeros(1))
    assert flat.sum(-1)[:, 0].tolist() == pytest.approx([-1.0, -3.0])  # E_k = 0 + log q(f_k)
    shared = Proposals(drawn, log_q[0]).energies(lambda x, t: torch.ones(x.shape), torch.zeros(1))
    assert torch.equal(shared, torch.ones(2, 1, 4))  # one shared filler: the energy's own per-token values
