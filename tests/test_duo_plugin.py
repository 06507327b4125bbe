"""The DUO plugin (plugins/duo, ``tsdfm_duo``): the duality map, the argmax trajectories, the uniform-state NELBO,
the curriculum's relaxation, the ancestral sampler, DUOModule and its Discrete Consistency Distillation (DCDModule).

The exact-denoiser properties pin the math: the NELBO is a hand-computed number on a tiny example and the
continuous-time limit of the discrete-step KLs, it is minimised by the exact mean-parameterised denoiser, and with
that denoiser the ancestral sampler draws the language itself.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, quick_trainer, tiny_synthetic
from test_conditioning import EXAMPLES, guided, keeps, templates

from lightning_tsdfm import TeacherModule
from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules import load_module, read_checkpoint_header
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.plugins import available_plugins, load_plugins
from lightning_tsdfm.shaping import TrajectoryShaper, check_shapeable

from conftest import randomize_

tsdfm_duo = pytest.importorskip("tsdfm_duo", reason="install the plugin: pip install --no-deps -e plugins/duo")
from tsdfm_duo import (  # noqa: E402
    ArgmaxTrajectory,
    Curriculum,
    DCDModule,
    DUOModule,
    GaussianBand,
    ancestral_kernel,
    argmax_kappa,
    d_argmax_kappa,
    gamma_for_kappa,
    gaussian_latent,
    prior_kl,
    relaxed_one_hot,
    uniform_state_nelbo,
)

V, L = TINY_VOCAB, TINY_LEN
seeds = st.integers(min_value=0, max_value=2**31 - 1)
vocab_sizes = st.integers(min_value=2, max_value=12)
kappas = st.floats(min_value=0.02, max_value=0.98)


def _duo(**kwargs) -> DUOModule:
    torch.manual_seed(0)
    return DUOModule(V, L, backbone=TINY_TEACHER, **kwargs)


def _one_hot(x, vocab):
    return torch.nn.functional.one_hot(x, vocab).double()


# ---------------------------------------------------------------- discovery


def test_plugin_is_discovered_through_the_entry_point():
    assert "duo" in available_plugins()
    assert load_plugins()["duo"] is tsdfm_duo


# ---------------------------------------------------------------- the duality map T(gamma)


@given(st.floats(-8.0, 8.0))
def test_two_tokens_have_the_closed_form_kappa(gamma):
    """V = 2: argmax = x1 iff eps_other - eps_x1 < m, a N(0, 2) variable: q = Phi(m / sqrt 2), T = 2 q - 1."""
    m = math.exp(-gamma / 2)
    expected = 2 * 0.5 * (1 + math.erf(m / 2)) - 1  # Phi(m / sqrt 2) = (1 + erf(m / 2)) / 2
    assert float(argmax_kappa(torch.tensor(gamma, dtype=torch.float64), 2)) == pytest.approx(expected, abs=1e-9)


@given(vocab_sizes, st.floats(-6.0, 6.0))
def test_kappa_decreases_from_one_to_zero_and_its_derivative_is_right(vocab, gamma):
    g = torch.tensor([gamma - 0.1, gamma, gamma + 0.1], dtype=torch.float64)
    kappa = argmax_kappa(g, vocab)
    assert ((kappa >= 0) & (kappa <= 1)).all() and kappa[0] >= kappa[1] >= kappa[2]
    d, f64 = 1e-5, torch.float64
    numeric = (argmax_kappa(torch.tensor(gamma + d, dtype=f64), vocab)
               - argmax_kappa(torch.tensor(gamma - d, dtype=f64), vocab)) / (2 * d)
    analytic = float(d_argmax_kappa(torch.tensor(gamma, dtype=f64), vocab))
    assert analytic == pytest.approx(float(numeric), rel=1e-5, abs=1e-9)
    assert float(argmax_kappa(torch.tensor(-30.0), vocab)) == pytest.approx(1.0, abs=1e-9)
    assert float(argmax_kappa(torch.tensor(30.0), vocab)) < 1e-3


@given(st.integers(2, 60_000), st.floats(0.01, 0.99))
def test_gamma_for_kappa_inverts_the_map(vocab, kappa):
    gamma = torch.tensor(gamma_for_kappa(kappa, vocab), dtype=torch.float64)
    assert float(argmax_kappa(gamma, vocab)) == pytest.approx(kappa, abs=1e-7)


@pytest.mark.parametrize("vocab", [2, 5, 64])
@pytest.mark.parametrize("gamma", [-3.0, 0.0, 2.0])
def test_the_argmax_of_the_gaussian_latent_follows_the_uniform_state_marginal(vocab, gamma):
    """argmax(a onehot(x1) + s eps) is x1 with probability kappa + (1 - kappa) / V and each other token with
    (1 - kappa) / V, kappa = T(gamma): within 5 standard errors over 200,000 draws."""
    n, x1 = 200_000, torch.zeros(1, 200_000, dtype=torch.long)
    noise = torch.randn(1, n, vocab, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tokens = gaussian_latent(x1, torch.tensor([gamma]), noise).argmax(-1)[0]
    kappa = float(argmax_kappa(torch.tensor(gamma), vocab))
    expected = torch.full((vocab,), (1 - kappa) / vocab, dtype=torch.float64)
    expected[0] += kappa
    freq = torch.bincount(tokens, minlength=vocab).double() / n
    assert ((freq - expected).abs() <= 5 * (expected * (1 - expected) / n).sqrt() + 1e-9).all()


def test_bands_span_the_kappa_they_are_named_by():
    band = GaussianBand.spanning(64, None, None, (0.05, 0.95))
    assert band.kappa_range() == pytest.approx((0.05, 0.95), abs=1e-6)
    u = torch.linspace(0, 1, 11)
    assert (band.kappa(u)[1:] > band.kappa(u)[:-1]).all() and (band.d_kappa(u) > 0).all()
    d = 1e-5
    middle = torch.tensor([0.4], dtype=torch.float64)
    numeric = (band.kappa(middle + d) - band.kappa(middle - d)) / (2 * d)
    assert float(band.d_kappa(middle)) == pytest.approx(float(numeric), rel=1e-5)
    # DUO's OpenWebText curriculum band, [-3.55, -1.85] for 50,257 tokens, is about this kappa range
    owt = GaussianBand(50257, -3.55, -1.85).kappa_range()
    assert owt[0] == pytest.approx(0.05, abs=0.002) and owt[1] == pytest.approx(0.945, abs=0.002)
    with pytest.raises(ValueError, match="gamma_min < gamma_max"):
        GaussianBand(8, 1.0, -1.0)


# ---------------------------------------------------------------- the argmax trajectories of DCD


@given(vocab_sizes, seeds, st.lists(st.floats(-6.0, 6.0), min_size=4, max_size=4))
def test_a_trajectory_is_the_argmax_of_its_latent_at_every_gamma(vocab, seed, gammas):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, vocab, (4, 5), generator=g)
    noise = torch.randn(4, 5, vocab, generator=g, dtype=torch.float64)
    trajectory = ArgmaxTrajectory.of_noise(x1, noise)
    for gamma in gammas:
        gamma = torch.full((4,), gamma)
        assert torch.equal(trajectory.tokens(gamma), gaussian_latent(x1, gamma, noise).argmax(-1))


@pytest.mark.parametrize("vocab", [2, 7, 1000])
def test_drawn_trajectories_have_the_law_of_the_latents_argmax_and_switch_once(vocab):
    """Drawn from three numbers per position, tokens(gamma) has the uniform-state marginal at T(gamma), and a
    position at x1 stays at x1 as the noise decreases (the switch happens once, toward the data)."""
    n = 200_000
    x1 = torch.full((1, n), 1, dtype=torch.long)
    trajectory = ArgmaxTrajectory.draw(x1, vocab, torch.Generator().manual_seed(0))
    gammas = [2.0, 0.0, -2.0]
    tokens = [trajectory.tokens(torch.tensor([gamma]))[0] for gamma in gammas]
    for gamma, drawn in zip(gammas, tokens):
        kappa = float(argmax_kappa(torch.tensor(gamma), vocab))
        at_x1 = (drawn == 1).double().mean()
        expected = kappa + (1 - kappa) / vocab
        assert abs(at_x1 - expected) <= 5 * math.sqrt(expected * (1 - expected) / n) + 1e-9
        others = drawn[drawn != 1]
        if vocab > 2 and len(others) > 1000:  # the noisy token is uniform over the others
            counts = torch.bincount(others, minlength=vocab).double()
            counts = torch.cat([counts[:1], counts[2:]]) / len(others)
            assert (counts - 1 / (vocab - 1)).abs().max() < 6 * math.sqrt(1 / (vocab - 1) / len(others)) + 0.01
    for noisier, cleaner in zip(tokens, tokens[1:]):
        assert ((noisier != 1) | (cleaner == 1)).all()
        assert ((noisier == cleaner) | (cleaner == 1)).all()  # before its switch a position keeps its runner-up


# ---------------------------------------------------------------- the NELBO


def _reference_nelbo(logits, x1, x_t, kappa, d_kappa):
    """sum_y [r_theta - r log r_theta + r log r - r] * kappa' / (V kappa), with every term written out, float64."""
    vocab = logits.shape[-1]
    k = kappa.double()[:, None, None]
    xbar = vocab * k * _one_hot(x1, vocab) + (1 - k)
    xbar_theta = vocab * k * torch.softmax(logits.double(), -1) + (1 - k)
    r = xbar / xbar.gather(-1, x_t[..., None])
    r_theta = xbar_theta / xbar_theta.gather(-1, x_t[..., None])
    terms = r_theta - r * r_theta.log() + r * r.log() - r
    return d_kappa.double()[:, None] / (vocab * kappa.double()[:, None]) * terms.sum(-1)


def test_nelbo_on_a_hand_computed_example():
    """V = 2, kappa = 1/2, kappa' = 1, x1 = 0, z = 1, x_theta = (1/4, 3/4):
    xbar = 1 * (1, 0) + 1/2 = (3/2, 1/2), r = (3, 1); xbar_theta = (1/4 + 1/2, 3/4 + 1/2) = (3/4, 5/4),
    r_theta = (3/5, 1); the y = 0 term is 3/5 - 3 log(3/5) + 3 log 3 - 3 = 3 log 5 - 12/5, and the weight
    kappa' / (V kappa) = 1."""
    logits = torch.tensor([[[math.log(0.25), math.log(0.75)]]], dtype=torch.float64)
    half, one = torch.tensor([0.5]), torch.tensor([1.0])
    value = uniform_state_nelbo(logits, torch.tensor([[0]]), torch.tensor([[1]]), half, one)
    assert float(value) == pytest.approx(3 * math.log(5) - 12 / 5, rel=1e-12)  # 2.4283137...
    # z = x1 = 0: xbar = (3/2, 1/2), r = (1, 1/3); r_theta = (1, 5/3): 5/3 - (1/3) log(5/3) + (1/3) log(1/3) - 1/3
    value = uniform_state_nelbo(logits, torch.tensor([[0]]), torch.tensor([[0]]), half, one)
    assert float(value) == pytest.approx(4 / 3 - math.log(5) / 3, rel=1e-12)


@given(vocab_sizes, kappas, st.floats(0.1, 5.0), seeds)
def test_nelbo_equals_its_written_out_sum_and_vanishes_at_the_data(vocab, kappa, scale, seed):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, vocab, (3, 6), generator=g)
    x_t = torch.where(torch.rand(3, 6, generator=g) < 0.5, x1, torch.randint(0, vocab, (3, 6), generator=g))
    logits = torch.randn(3, 6, vocab, generator=g, dtype=torch.float64) * scale
    k, dk = torch.full((3,), kappa, dtype=torch.float64), torch.rand(3, generator=g, dtype=torch.float64) + 0.5
    value = uniform_state_nelbo(logits, x1, x_t, k, dk)
    assert torch.allclose(value, _reference_nelbo(logits, x1, x_t, k, dk), rtol=1e-9, atol=1e-10)
    assert (value >= -1e-12).all()
    exact = (_one_hot(x1, vocab) - 1) * 60.0  # x_theta = onehot(x1) up to e^-60, float64
    assert uniform_state_nelbo(exact, x1, x_t, k, dk).abs().max() < 1e-12


@given(vocab_sizes, kappas, st.floats(0.1, 4.0), seeds)
@settings(max_examples=30)
def test_nelbo_is_the_continuous_time_limit_of_the_ancestral_steps_kls(vocab, kappa, scale, seed):
    """E_{z_t ~ q_t(. | x1)} KL(q(z_s | z_t, x1) || p_theta(z_s | z_t)) / h -> E_{z_t} l(t) as h -> 0 (kappa(t) = t):
    the loss is the ELBO of the sampler it trains."""
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, vocab, (1, 3), generator=g)
    logits = torch.randn(1, 3, vocab, generator=g, dtype=torch.float64) * scale
    h = 1e-7
    k_t, k_s = torch.tensor([kappa], dtype=torch.float64), torch.tensor([kappa + h], dtype=torch.float64)
    per_step, integrand = torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64)
    for z in range(vocab):  # every noisy token, weighted by q_t(z | x1)
        x_t = torch.full_like(x1, z)
        weight = kappa * (x1 == z).double() + (1 - kappa) / vocab
        true = ancestral_kernel(_one_hot(x1, vocab), x_t, k_t, k_s)
        model = ancestral_kernel(torch.softmax(logits, -1), x_t, k_t, k_s)
        per_step += weight * (true * (true.clamp_min(1e-300).log() - model.log())).sum(-1)
        integrand += weight * uniform_state_nelbo(logits, x1, x_t, k_t, torch.ones(1, dtype=torch.float64))
    assert torch.allclose(per_step / h, integrand, rtol=2e-3, atol=1e-6)


@given(vocab_sizes, kappas, seeds)
def test_nelbo_is_minimised_by_the_exact_mean_parameterised_denoiser(vocab, kappa, seed):
    """For a posterior w = p(x1 | z) of a position whose noisy token is z, E_{x1 ~ w} l has zero gradient at
    x_theta proportional to w / q(z | x1): the denoiser DUO learns is the posterior given the other positions."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randint(0, vocab, (1, 1), generator=g)
    posterior = torch.softmax(torch.randn(vocab, generator=g, dtype=torch.float64) * 2, -1)
    q_z = kappa * _one_hot(z[0, 0], vocab) + (1 - kappa) / vocab  # q(z | x1 = y) over y
    logits = (posterior / q_z).log().reshape(1, 1, vocab).requires_grad_(True)
    k, dk = torch.tensor([kappa], dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    expected = sum(posterior[y] * uniform_state_nelbo(logits, torch.tensor([[y]]), z, k, dk).sum()
                   for y in range(vocab))
    (grad,) = torch.autograd.grad(expected, logits)
    assert grad.abs().max() < 1e-9


def test_prior_term_is_the_kl_to_the_uniform_source():
    for vocab, kappa_0 in ((2, 0.3), (8, 1e-3), (64, 0.0)):
        q = torch.full((vocab,), (1 - kappa_0) / vocab, dtype=torch.float64)
        q[0] += kappa_0
        assert prior_kl(kappa_0, vocab) == pytest.approx(float((q * (q * vocab).log()).sum()), abs=1e-12)


# ---------------------------------------------------------------- the curriculum


def test_the_curriculum_anneals_the_temperature_log_linearly_then_stops():
    curriculum = Curriculum(100, 0.1, 0.001)
    assert curriculum.temperature(0) == pytest.approx(0.1) and curriculum.temperature(50) == pytest.approx(0.01)
    assert curriculum.active(99) and not curriculum.active(100)
    assert not Curriculum(0, 0.1, 0.01).active(0)
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        Curriculum(10, 0.0, 0.1)


@given(seeds, st.floats(0.0, 1.0))
@settings(max_examples=25, deadline=None)
def test_the_relaxation_tends_to_the_discrete_loss_as_its_temperature_goes_to_zero(seed, u):
    """softmax(w / tau) -> onehot(argmax w) as tau -> 0, so the curriculum's loss tends to the discrete loss at the
    same tokens z = argmax w, noise level kappa = T(gamma(u)) and weight: at tau a small fraction of the smallest gap
    between a latent's top two coordinates they agree to rounding, while at tau = 10 the input is nearly uniform."""
    module = randomize_(_duo(), seed=seed % 1000).eval()
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, V, (2, L), generator=g)
    time = torch.full((2,), u)
    latent = gaussian_latent(x1, module.band.gamma(time), torch.randn(2, L, V, generator=g, dtype=torch.float64))
    top2 = latent.topk(2, dim=-1).values
    gap = float((top2[..., 0] - top2[..., 1]).min())
    assume(gap > 1e-3)
    kappa, d_kappa, z = module.band.kappa(time), module.band.d_kappa(time), latent.argmax(-1)

    def loss(inputs):
        with torch.no_grad():
            return uniform_state_nelbo(module.net(inputs, module.time_input(kappa)), x1, z, kappa, d_kappa)

    discrete = loss(z)
    for tau in (gap / 200, gap / 2000):
        difference = float((loss(relaxed_one_hot(latent, tau)) - discrete).abs().max())
        assert difference < 1e-4 * (1 + float(discrete.abs().max()))
    assert relaxed_one_hot(latent, 10.0).max() < 2 / V  # a high temperature really relaxes


# ---------------------------------------------------------------- the ancestral kernel


@given(vocab_sizes, kappas, st.floats(0.0, 1.0), seeds)
def test_the_kernel_of_the_data_is_bayes_rule_and_rows_sum_to_one(vocab, kappa_t, fraction, seed):
    g = torch.Generator().manual_seed(seed)
    kappa_s = kappa_t + fraction * (1 - kappa_t)
    assume(kappa_s > kappa_t)
    x1, x_t = torch.randint(0, vocab, (2, 4), generator=g), torch.randint(0, vocab, (2, 4), generator=g)
    k_t, k_s = torch.full((2,), kappa_t, dtype=torch.float64), torch.full((2,), kappa_s, dtype=torch.float64)
    kernel = ancestral_kernel(_one_hot(x1, vocab), x_t, k_t, k_s)
    rho = kappa_t / kappa_s
    forward = torch.stack([rho * (x_t == y).double() + (1 - rho) / vocab for y in range(vocab)], -1)  # q(z_t | z_s=y)
    prior = kappa_s * _one_hot(x1, vocab) + (1 - kappa_s) / vocab
    bayes = forward * prior / (forward * prior).sum(-1, keepdim=True)
    assert torch.allclose(kernel, bayes, atol=1e-12)
    probs = torch.softmax(torch.randn(2, 4, vocab, generator=g, dtype=torch.float64), -1)
    model = ancestral_kernel(probs, x_t, k_t, k_s)
    assert torch.allclose(model.sum(-1), torch.ones(2, 4, dtype=torch.float64)) and (model >= 0).all()


class _ExactDenoiser(torch.nn.Module):
    """The backbone whose x_theta is the exact mean-parameterised denoiser of a joint law ``joint`` [V] * L over
    sequences: per position, p(x1^i | z^{-i}) by enumeration (the other positions seen through q_t(z | x1)); for a
    law [V] of iid tokens, that law at every position."""

    latent_codes = 0

    def __init__(self, joint: torch.Tensor, scheduler) -> None:
        super().__init__()
        self.joint, self.scheduler = joint, scheduler

    def forward(self, x_t, t, h=None, z=None):
        vocab, length = self.joint.shape[0], self.joint.dim()
        if length == 1:
            return self.joint.log().float().expand(*x_t.shape, vocab)
        kappa = self.scheduler.kappa(t.double())[:, None, None]
        q = kappa * _one_hot(x_t, vocab) + (1 - kappa) / vocab  # q_t(z^j | x1^j = y) [B, L, y]
        logits = []
        for i in range(length):
            weights = self.joint.expand(len(x_t), *self.joint.shape)
            for j in range(length):
                if j != i:
                    shape = [len(x_t)] + [vocab if k == j else 1 for k in range(length)]
                    weights = weights * q[:, j].reshape(shape)
            marginal = weights.sum(dim=[k + 1 for k in range(length) if k != i])
            logits.append(marginal.log())
        return torch.stack(logits, 1).float()


def _total_variation(samples: torch.Tensor, joint: torch.Tensor) -> float:
    vocab = joint.shape[0]
    index = sum(samples[:, i] * vocab ** (samples.shape[1] - 1 - i) for i in range(samples.shape[1]))
    empirical = torch.bincount(index, minlength=joint.numel()).double() / len(samples)
    return 0.5 * float((empirical - joint.flatten()).abs().sum())


@pytest.mark.parametrize("steps", [1, 4, 64])
def test_with_the_exact_denoiser_of_iid_tokens_every_step_count_draws_them(steps):
    """For iid tokens the exact x_theta is their law pi at every z and t, and each ancestral step is the exact
    posterior: the samples' token frequencies are pi within 4 standard errors, whatever the step count."""
    pi = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.015, 0.005], dtype=torch.float64)
    module = DUOModule(V, 4, backbone=TINY_TEACHER, curriculum_steps=0)
    module.net = _ExactDenoiser(pi, module.path.scheduler)
    samples = module.sample(5000, steps, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(samples.flatten(), minlength=V).double() / samples.numel()
    assert ((freq - pi).abs() < 4 * (pi * (1 - pi) / samples.numel()).sqrt() + 1e-3).all(), freq


def test_with_the_exact_denoiser_many_steps_draw_a_correlated_language():
    """Two positions of three tokens that mostly agree: with the exact x_theta, 256 ancestral steps draw the joint
    law within 0.03 in total variation; one step draws each position from its marginal only (the factorised kernel
    cannot correlate positions in one step)."""
    joint = torch.tensor([[0.30, 0.02, 0.03], [0.02, 0.25, 0.03], [0.05, 0.02, 0.28]], dtype=torch.float64)
    module = DUOModule(3, 2, backbone=TINY_TEACHER, curriculum_steps=0)
    module.net = _ExactDenoiser(joint, module.path.scheduler)
    many = module.sample(20_000, 256, generator=torch.Generator().manual_seed(0), batch_size=20_000)
    one = module.sample(20_000, 1, generator=torch.Generator().manual_seed(1))
    assert _total_variation(many, joint) < 0.03
    assert _total_variation(one, joint) > 0.2


# ---------------------------------------------------------------- the module


def test_module_is_a_uniform_state_denoiser_on_the_library_path():
    module = _duo()
    assert module.path.source.name == "uniform" and module.net.input_vocab_size == V
    assert module.samplers == ("ancestral",)
    u = torch.tensor([0.0, 0.3, 1.0])
    assert torch.allclose(module.time_input(module.path.scheduler.kappa(u)), u, atol=1e-6)
    check_shapeable(module)  # its ancestral steps go through jump.transition: a compass may learn or guide them
    with pytest.raises(ValueError, match="no sampler 'tweedie'"):
        module.sample(2, 2, sampler="tweedie")
    with pytest.raises(ValueError, match="eps must lie in"):
        DUOModule(V, L, eps=0.0)


def test_sample_is_valid_reproducible_and_drawn_by_the_jump_policy():
    calls = []

    class CountingJump(BlindJump):
        def transition(self, *args, **kwargs):
            calls.append(1)
            return super().transition(*args, **kwargs)

    module = randomize_(_duo())
    first = module.sample(5, 4, generator=torch.Generator().manual_seed(3), batch_size=3, jump=CountingJump())
    again = module.sample(5, 4, generator=torch.Generator().manual_seed(3), batch_size=3)
    assert first.shape == (5, L) and first.dtype == torch.long and ((first >= 0) & (first < V)).all()
    assert torch.equal(first, again) and len(calls) == 4 * 2  # 4 steps for each of the 2 chunks
    assert module.training  # restored after sampling
    assert module.sample(4, 3, step_sizes=[0.5, 0.25, 0.25]).shape == (4, L)


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_duo_keeps_the_known_tokens(known: Given, seed: int):
    duo = randomize_(_duo()).eval()
    keeps(duo, known, seed)
    keeps(duo, known, seed, jump=guided(seed))


def test_training_runs_the_curriculum_first_then_the_discrete_loss(tmp_path):
    module = _duo(curriculum_steps=2, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    used = []
    for name in ("curriculum_loss", "discrete_loss"):
        original = getattr(module, name)
        setattr(module, name, lambda *args, _name=name, _f=original: used.append(_name) or _f(*args))
    quick_trainer(tmp_path, 4).fit(module, datamodule=tiny_synthetic())
    assert used == ["curriculum_loss"] * 2 + ["discrete_loss"] * 2


@pytest.fixture(scope="module")
def duo_ckpt(tmp_path_factory):
    module = _duo(curriculum_steps=10, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    return fit_checkpoint(module, tmp_path_factory.mktemp("duo"), 20, tiny_synthetic(num_train=64))


def test_fit_lowers_the_nelbo_and_loads_back(duo_ckpt):
    data = tiny_synthetic(num_train=64)
    data.setup()
    held_out = data._val

    def nelbo(module) -> float:
        with torch.no_grad():
            return sum(module.discrete_loss(held_out, torch.Generator().manual_seed(k)).item() for k in range(16)) / 16

    assert read_checkpoint_header(duo_ckpt)["kind"] == "duo"
    loaded = load_module(duo_ckpt, expected_kind="duo")
    assert type(loaded) is DUOModule and loaded.data_card["vocab_size"] == V
    assert loaded.curriculum == Curriculum(10, 0.1, 0.01)
    assert nelbo(loaded) < nelbo(_duo())
    assert ((loaded.sample(4, 3) >= 0)).all()


def test_a_checkpoint_of_another_kind_is_refused(duo_ckpt, tmp_path):
    with pytest.raises(UserError, match="is a 'duo' checkpoint, but a 'sedd' checkpoint is needed"):
        load_module(duo_ckpt, expected_kind="sedd")
    other = fit_checkpoint(TeacherModule(V, L, backbone=TINY_TEACHER), tmp_path, 1, tiny_synthetic())
    with pytest.raises(UserError, match="'teacher' checkpoint: DCD distils a DUO model .*plugins/duo/configs/duo.yaml"):
        DCDModule(str(other), V, L)


# ---------------------------------------------------------------- Discrete Consistency Distillation


def _dcd(duo_ckpt, **kwargs) -> DCDModule:
    torch.manual_seed(0)
    defaults = dict(teacher_steps=8, num_rounds=2, steps_per_round=2,
                    optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    return DCDModule(str(duo_ckpt), V, L, **{**defaults, **kwargs})


def test_the_student_starts_as_its_teacher(duo_ckpt):
    teacher, student = load_module(duo_ckpt), _dcd(duo_ckpt)
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), teacher.state_dict().values()))
    assert student.data_card == teacher.data_card and student.hparams.teacher_hparams["vocab_size"] == V
    assert student.eps == teacher.eps and student.band.kappa_range() == pytest.approx((0.006, 0.999), abs=1e-6)
    assert [student.gap(r) for r in range(2)] == [1 / 8, 2 / 8]
    with pytest.raises(ValueError, match="leaves no room on the band"):
        _dcd(duo_ckpt, teacher_steps=4, num_rounds=3)
    with pytest.raises(ValueError, match="'reverse_kl' or 'forward_kl'"):
        _dcd(duo_ckpt, divergence="kl")


@pytest.mark.parametrize("divergence", ["reverse_kl", "forward_kl"])
def test_the_student_at_z_u_learns_the_teacher_at_z_u_plus_delta_of_the_same_trajectory(duo_ckpt, divergence):
    """The loss, replayed from the same draws: u, one argmax trajectory per position, the student at the noisier
    point and the teacher at the cleaner point Delta later, each at the log-linear time of its kappa."""
    student, teacher = _dcd(duo_ckpt, divergence=divergence), load_module(duo_ckpt)
    x1 = torch.randint(0, V, (6, L), generator=torch.Generator().manual_seed(0))
    loss, moved = student.consistency_loss(x1, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    u = student.draw_times(6, g, "cpu", 1 - 1 / 8)
    trajectory = ArgmaxTrajectory.draw(x1, V, g)
    z_u, z_later = trajectory.tokens(student.band.gamma(u)), trajectory.tokens(student.band.gamma(u + 1 / 8))
    with torch.no_grad():
        p = torch.log_softmax(teacher.net(z_u, student.time_input(student.band.kappa(u))), -1)  # the student = teacher
        q = torch.log_softmax(teacher.net(z_later, student.time_input(student.band.kappa(u + 1 / 8))), -1)
    expected = (p.exp() * (p - q)).sum(-1).mean() if divergence == "reverse_kl" else (q.exp() * (q - p)).sum(-1).mean()
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)
    assert float(moved) == pytest.approx(float((z_u != z_later).double().mean()))
    loss.backward()
    assert all(torch.isfinite(w.grad).all() for w in student.parameters() if w.grad is not None)


def test_rounds_renew_the_teacher_no_jump_is_drawn_and_the_checkpoint_keeps_the_round(duo_ckpt, tmp_path):
    calls = []

    class CountingJump(BlindJump):
        def __call__(self, *args, **kwargs):
            calls.append(1)
            return super().__call__(*args, **kwargs)

        def transition(self, *args, **kwargs):
            calls.append(1)
            return super().transition(*args, **kwargs)

    student = _dcd(duo_ckpt)
    student.jump_policy = CountingJump()
    seen = []

    class Spy(Callback):
        def on_train_batch_end(self, trainer, module, *args):
            seen.append((module._teacher_round, id(module._round_teacher)))

    quick_trainer(tmp_path, 4, [Spy()]).fit(student, datamodule=tiny_synthetic())
    assert calls == []  # its trajectories are argmaxes of a Gaussian latent: nothing is drawn by a jump
    assert [r for r, _ in seen] == [0, 0, 1, 1] and seen[0][1] == seen[1][1] != seen[2][1]
    trainer = quick_trainer(tmp_path, 4)
    trainer.fit(student, datamodule=tiny_synthetic())  # already at max_steps: attach only
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    loaded = load_module(tmp_path / "end.ckpt", expected_kind="duo_dcd")
    assert loaded._teacher_round == 1
    saved, held = loaded._round_teacher.module.state_dict(), student._round_teacher.module.state_dict()
    assert all(torch.equal(saved[name], held[name]) for name in held)
    assert loaded.sample(3, 2).shape == (3, L)


def test_an_averaged_student_is_saved_while_the_raw_one_teaches_the_rounds(duo_ckpt, tmp_path):
    duo, first = load_module(duo_ckpt).net.state_dict(), {}

    class AfterFirstStep(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == 1:
                first.update({name: w.clone() for name, w in module.net.state_dict().items()})

    still = _dcd(duo_ckpt, ema_decay=1.0)  # an average that never moves on from the first step's weights
    quick_trainer(tmp_path / "still", 4, [AfterFirstStep(), ModelCheckpoint(dirpath=tmp_path / "still", save_last=True)]
                  ).fit(still, datamodule=tiny_synthetic())
    saved = load_module(tmp_path / "still" / "last.ckpt", expected_kind="duo_dcd")
    assert all(torch.equal(saved.net.state_dict()[name], w) for name, w in first.items())
    assert all(torch.equal(still.net.state_dict()[name], w) for name, w in first.items())  # after fit, too
    taught = still._round_teacher.module.state_dict()  # round 1's teacher: the raw student after round 0's 2 steps
    assert any(not torch.equal(taught[name], w) for name, w in first.items())
    raw = load_module(fit_checkpoint(_dcd(duo_ckpt), tmp_path / "raw", 4, tiny_synthetic()), expected_kind="duo_dcd")
    assert any(not torch.equal(raw.net.state_dict()[name], w) for name, w in duo.items())
    with pytest.raises(ValueError, match=r"ema_decay=1.5 must lie in \[0, 1\]"):
        _dcd(duo_ckpt, ema_decay=1.5)


def test_the_shaper_says_why_it_does_not_apply_to_dcd(duo_ckpt):
    with pytest.raises(TypeError, match="does not apply to DCDModule: its training pairs .* deterministic "
                                        "probability-flow"):
        TrajectoryShaper("oracle").setup(None, _dcd(duo_ckpt), "fit")
    with pytest.raises(TypeError, match="does not apply to DCDModule"):
        check_shapeable(_dcd(duo_ckpt))
