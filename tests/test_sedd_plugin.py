"""The SEDD plugin (plugins/sedd, ``tsdfm_sedd``): graphs, score entropy, Euler and Tweedie kernels, the module.

The exact-score properties pin the math: with the score of a known denoiser p(x1 | x_t), the Tweedie kernel
is the exact posterior of the mixture path, and the weighted absorbing score entropy is the MDLM NELBO.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from lightning_helpers import fit_checkpoint

from lightning_tsdfm import SyntheticDataModule, TransformerConfig
from lightning_tsdfm.jumps import BlindJump, mixture_kernel
from lightning_tsdfm.losses import generalized_kl
from lightning_tsdfm.modules import load_module, read_checkpoint_header
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.paths import MaskSource, MixturePath, Scheduler, UniformSource
from lightning_tsdfm.plugins import available_plugins, load_plugins

tsdfm_sedd = pytest.importorskip("tsdfm_sedd", reason="install the plugin: pip install --no-deps -e plugins/sedd")
from tsdfm_sedd import LogLinearNoise, SEDDModule, make_graph, step_kernel  # noqa: E402

VOCAB, LEN = 6, 6
BACKBONE = TransformerConfig(hidden_size=32, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=32)
EPS = 1e-3
NOISE = LogLinearNoise(EPS)

seeds = st.integers(min_value=0, max_value=2**31 - 1)
vocab_sizes = st.integers(min_value=2, max_value=8)
graphs = st.sampled_from(["absorb", "uniform"])
samplers = st.sampled_from(["tweedie", "euler"])
taus = st.floats(min_value=0.0, max_value=0.999)


def _step(tau: float, fraction: float, last: bool) -> tuple[float, float]:
    """(t, h) with t + h = 1 exactly when ``last``, else t + h <= 1 - 1e-5 (clear of the last-step tolerance)."""
    return (tau, 1.0 - tau) if last else (tau, max(min(fraction, 0.99) * (1.0 - tau), 1e-6))


def _states(graph, shape, g) -> torch.Tensor:
    """Random states x [B, L] over all the graph's states (tokens and, for absorb, the mask)."""
    return torch.randint(0, graph.num_states, shape, generator=g)


def _posterior(vocab: int, shape, g) -> torch.Tensor:
    """A random denoiser p(x1 | x_t) [B, L, V] in float64, some rows sharply peaked."""
    logits = torch.randn((*shape, vocab), generator=g, dtype=torch.float64) * 3.0
    return torch.softmax(logits, dim=-1)


def _exact_uniform_log_score(probs, x, kappa):
    """log s_y = log sum_x1 p(x1) p_t(y | x1) / p_t(x | x1), p_t(y | x1) = kappa delta(y, x1) + (1 - kappa) / V."""
    vocab = probs.shape[-1]
    k = kappa[:, None, None, None]
    eye = torch.eye(vocab, dtype=probs.dtype)
    p_t = k * eye + (1 - k) / vocab  # [B, 1, x1, y]
    index = x[..., None, None].expand(*x.shape, vocab, 1)
    p_t_x = p_t.expand(*x.shape, vocab, vocab).gather(-1, index)  # p_t(x | x1) [B, L, x1, 1]
    ratio = p_t / p_t_x  # [B, L, x1, y]
    return torch.log((probs[..., None] * ratio).sum(-2))


def _exact_log_score(graph, probs, x, kappa):
    if graph.name == "absorb":  # s_y = p_y / (e^sigma - 1) = p_y kappa / (1 - kappa)
        return torch.log(probs) + (torch.log(kappa) - torch.log1p(-kappa))[:, None, None]
    return _exact_uniform_log_score(probs, x, kappa)


def _uniform_posterior_kernel(probs, x, kappa, kappa_next):
    """sum_x1 p(x1) p(x_{t+h} = y | x_t = x, x1) by Bayes; the forward step y -> x keeps y w.p. kappa / kappa_next."""
    vocab = probs.shape[-1]
    eye = torch.eye(vocab, dtype=probs.dtype)
    k, kn = kappa[:, None, None, None], kappa_next[:, None, None, None]
    p_next = kn * eye + (1 - kn) / vocab  # p_{t+h}(y | x1)  [B, 1, x1, y]
    keep = kappa / kappa_next
    keep = keep[:, None, None]
    back = keep * torch.nn.functional.one_hot(x, vocab).to(probs) + (1 - keep) / vocab  # P(x | y) [B, L, y]
    p_now = (k * eye + (1 - k) / vocab).expand(*x.shape, vocab, vocab)
    p_now_x = p_now.gather(-1, x[..., None, None].expand(*x.shape, vocab, 1))  # p_t(x | x1) [B, L, x1, 1]
    return (probs[..., None] * p_next * back[..., None, :] / p_now_x).sum(-2)


def _module(graph: str = "absorb", sampler: str = "tweedie", **kwargs) -> SEDDModule:
    torch.manual_seed(0)
    return SEDDModule(VOCAB, LEN, graph=graph, sampler=sampler, backbone=BACKBONE, **kwargs)


def _datamodule() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=3, seq_len=LEN, num_train=256, num_val=32, batch_size=16)


# ---------------------------------------------------------------- plugin discovery and names


def test_plugin_is_discovered_through_the_entry_point():
    assert "sedd" in available_plugins()
    assert load_plugins()["sedd"] is tsdfm_sedd


def test_unknown_graph_or_sampler_names_the_choices():
    with pytest.raises(ValueError, match="'absorb', 'uniform'"):
        make_graph("gaussian", VOCAB)
    with pytest.raises(ValueError, match="'absorb', 'uniform'"):
        SEDDModule(VOCAB, LEN, graph="gaussian", backbone=BACKBONE)
    with pytest.raises(ValueError, match="'tweedie', 'euler'"):
        SEDDModule(VOCAB, LEN, sampler="analytic", backbone=BACKBONE)
    with pytest.raises(ValueError, match="'tweedie', 'euler'"):
        _module().sample(2, 2, sampler="analytic")
    with pytest.raises(ValueError, match="eps"):
        LogLinearNoise(0.0)


def test_noise_is_log_linear():
    tau = torch.tensor([0.0, 0.25, 1.0])
    assert torch.allclose(NOISE.kappa(tau), EPS + (1 - EPS) * tau.double())
    assert torch.allclose(NOISE.sigma(tau), -torch.log(NOISE.kappa(tau)))
    assert NOISE.sigma(torch.ones(1)).item() == 0.0
    # |d sigma / d tau| by a central difference
    t, d = torch.tensor([0.3], dtype=torch.float64), 1e-6
    assert torch.allclose(NOISE.rate(t), (NOISE.sigma(t - d) - NOISE.sigma(t + d)) / (2 * d), rtol=1e-6)


def _former_forward_process(source, eps: float, x1: torch.Tensor, tau: torch.Tensor, g) -> torch.Tensor:
    """The plugin's own forward process before its noise became the path's scheduler, kept as the reference:
    each position keeps x1 with probability eps + (1 - eps) tau (float64 uniforms), else takes a source draw."""
    x0 = source.sample(tuple(x1.shape), g, x1.device)
    u = torch.rand(x1.shape, generator=g, device=x1.device, dtype=torch.float64)
    return torch.where(u < (eps + (1 - eps) * tau.double())[:, None], x1, x0)


def _state_frequencies(x: torch.Tensor, num_states: int) -> torch.Tensor:
    """Per-row frequencies of each state [B, S] (positions of a row are iid given a constant x1 row)."""
    return torch.stack([torch.bincount(row, minlength=num_states) for row in x]).double() / x.shape[1]


@given(graphs, vocab_sizes, st.floats(1e-4, 0.5), st.lists(taus, min_size=3, max_size=3), seeds)
def test_log_linear_scheduler_gives_the_marginals_of_the_former_forward_process(graph_name, vocab, eps, ts, seed):
    """The module's path, MixturePath(source, LogLinearNoise(eps)), has the marginal of the former forward process,
    p_tau(y | x1) = kappa delta(y, x1) + (1 - kappa) p_source(y) with kappa = eps + (1 - eps) tau: the same kappa,
    and the state frequencies of both samplers within 6 standard errors of it."""
    module = SEDDModule(vocab, LEN, graph=graph_name, eps=eps, backbone=BACKBONE)
    path, source = module.path, module.path.source
    assert isinstance(path.scheduler, Scheduler) and path.scheduler == LogLinearNoise(eps)
    tau = torch.tensor(ts)
    kappa = eps + (1 - eps) * tau.double()
    assert torch.allclose(path.scheduler.kappa(tau), kappa, rtol=1e-12, atol=0)
    assert torch.allclose(path.scheduler.d_kappa(tau), torch.full_like(kappa, 1 - eps), rtol=1e-12, atol=0)

    g = torch.Generator().manual_seed(seed)
    length, states = 20_000, source.input_vocab_size
    data_token = torch.randint(0, vocab, (3,), generator=g)
    x1 = data_token[:, None].expand(-1, length).contiguous()
    p_source = source.log_prob(torch.arange(states)).exp()  # [S], the mask (absorb) or 1/V per token (uniform)
    expected = kappa[:, None] * torch.nn.functional.one_hot(data_token, states) + (1 - kappa)[:, None] * p_source
    tolerance = 6 * (expected * (1 - expected) / length).sqrt() + 1e-3
    for x_tau in (path.sample(x1, tau, g), _former_forward_process(source, eps, x1, tau, g)):
        assert ((_state_frequencies(x_tau, states) - expected).abs() <= tolerance).all()


# ---------------------------------------------------------------- kernels


@given(graphs, samplers, vocab_sizes, taus, st.floats(0.0, 1.0), st.booleans(), st.floats(0.1, 30.0), seeds)
def test_kernel_rows_are_distributions(graph_name, sampler, vocab, tau, fraction, last, scale, seed):
    g = torch.Generator().manual_seed(seed)
    graph = make_graph(graph_name, vocab)
    x = _states(graph, (3, 4), g)
    log_s = torch.randn((3, 4, vocab), generator=g) * scale
    t0, h0 = _step(tau, fraction, last)
    t, h = torch.full((3,), t0), torch.full((3,), h0)
    kernel = step_kernel(sampler, graph, NOISE, x, log_s, t, h)
    assert kernel.shape == (3, 4, graph.num_states)
    assert torch.isfinite(kernel).all() and (kernel >= 0).all()
    assert torch.allclose(kernel.sum(-1), torch.ones(3, 4), atol=1e-5)


@given(samplers, vocab_sizes, taus, st.floats(0.0, 1.0), st.booleans(), st.floats(0.1, 30.0), seeds)
def test_absorbing_kernels_never_move_mass_to_the_mask(sampler, vocab, tau, fraction, last, scale, seed):
    g = torch.Generator().manual_seed(seed)
    graph = make_graph("absorb", vocab)
    x = _states(graph, (3, 5), g)
    log_s = torch.randn((3, 5, vocab), generator=g) * scale
    t0, h0 = _step(tau, fraction, last)
    kernel = step_kernel(sampler, graph, NOISE, x, log_s, torch.full((3,), t0), torch.full((3,), h0))
    revealed = x != graph.mask_id
    assert torch.equal(kernel[revealed], torch.nn.functional.one_hot(x[revealed], vocab + 1).float())
    if last:
        assert (kernel[..., graph.mask_id] == 0).all()


@given(graphs, vocab_sizes, taus, st.floats(0.0, 1.0), st.booleans(), seeds)
def test_tweedie_with_the_exact_score_is_the_exact_posterior(graph_name, vocab, tau, fraction, last, seed):
    g = torch.Generator().manual_seed(seed)
    graph = make_graph(graph_name, vocab)
    x = _states(graph, (2, 4), g)
    probs = _posterior(vocab, (2, 4), g)
    t0, h0 = _step(tau, fraction, last)
    t = torch.full((2,), t0, dtype=torch.float64)
    h = torch.full((2,), h0, dtype=torch.float64)
    kappa, kappa_next = NOISE.kappa(t), NOISE.kappa((t + h).clamp_max(1.0))
    kernel = step_kernel("tweedie", graph, NOISE, x, _exact_log_score(graph, probs, x, kappa), t, h)
    if graph_name == "absorb":
        exact = mixture_kernel(x, probs, t, h, MixturePath(MaskSource(vocab), NOISE))  # the path with SEDD's kappa
    else:
        exact = _uniform_posterior_kernel(probs, x, kappa, kappa_next)
    assert torch.allclose(kernel, exact, atol=1e-9), (kernel - exact).abs().max()


@given(vocab_sizes, taus, st.floats(0.0, 1.0), st.floats(0.1, 10.0), seeds)
def test_absorbing_euler_equals_tweedie_before_the_last_step(vocab, tau, fraction, scale, seed):
    """With kappa linear in tau, e^{Delta sigma} - 1 = (1 - eps) h / kappa = |d sigma/d tau| h: the two agree."""
    g = torch.Generator().manual_seed(seed)
    graph = make_graph("absorb", vocab)
    x = _states(graph, (2, 4), g)
    log_s = torch.randn((2, 4, vocab), generator=g, dtype=torch.float64) * scale
    t0, h0 = _step(tau, fraction, last=False)
    t, h = torch.full((2,), t0, dtype=torch.float64), torch.full((2,), h0, dtype=torch.float64)
    euler = step_kernel("euler", graph, NOISE, x, log_s, t, h)
    assert torch.allclose(euler, step_kernel("tweedie", graph, NOISE, x, log_s, t, h), atol=1e-9)


def test_uniform_euler_agrees_with_tweedie_to_first_order():
    g = torch.Generator().manual_seed(0)
    graph = make_graph("uniform", VOCAB)
    x = _states(graph, (2, 4), g)
    t = torch.full((2,), 0.4, dtype=torch.float64)
    log_s = _exact_log_score(graph, _posterior(VOCAB, (2, 4), g), x, NOISE.kappa(t))
    leave = ~torch.nn.functional.one_hot(x, VOCAB).bool()
    for h in (1e-3, 1e-4):
        hh = torch.full((2,), h, dtype=torch.float64)
        euler = step_kernel("euler", graph, NOISE, x, log_s, t, hh)[leave]
        tweedie = step_kernel("tweedie", graph, NOISE, x, log_s, t, hh)[leave]
        assert torch.allclose(euler / tweedie, torch.ones_like(euler), atol=20 * h)


# ---------------------------------------------------------------- score entropy


@given(graphs, vocab_sizes, taus, st.floats(0.1, 10.0), seeds)
def test_score_entropy_is_nonnegative(graph_name, vocab, tau, scale, seed):
    g = torch.Generator().manual_seed(seed)
    graph = make_graph(graph_name, vocab)
    x1 = torch.randint(0, vocab, (3, 5), generator=g)
    kappa = NOISE.kappa(torch.full((3,), tau))
    path = MixturePath(MaskSource(vocab) if graph_name == "absorb" else UniformSource(vocab), NOISE)
    x_t = path.sample(x1, torch.full((3,), tau), g)
    log_s = torch.randn((3, 5, vocab), generator=g, dtype=torch.float64) * scale
    entropy = graph.score_entropy(log_s, x_t, x1, kappa)
    assert entropy.shape == (3, 5)
    assert torch.isfinite(entropy).all() and (entropy >= -1e-9).all()


@given(vocab_sizes, taus, seeds)
def test_absorbing_score_entropy_of_the_exact_score_is_the_mdlm_nelbo(vocab, tau, seed):
    """(1 - eps) / kappa * SE(s_exact) = (1 - eps) / (1 - kappa) * -log p(x1 | x_t) on masked positions."""
    g = torch.Generator().manual_seed(seed)
    graph = make_graph("absorb", vocab)
    path = MixturePath(MaskSource(vocab), NOISE)
    t = torch.full((3,), tau, dtype=torch.float64)
    x1 = torch.randint(0, vocab, (3, 5), generator=g)
    x_t = path.sample(x1, t, g)
    probs = _posterior(vocab, (3, 5), g)
    kappa = NOISE.kappa(t)
    weighted = NOISE.rate(t)[:, None] * graph.score_entropy(_exact_log_score(graph, probs, x_t, kappa), x_t, x1, kappa)
    nelbo = generalized_kl(path.source.carry_over(probs.log(), x_t), x1, x_t, t, path).double()  # float32 inside
    masked = x_t == path.source.mask_id
    assert (weighted[~masked] == 0).all() and (nelbo[~masked] == 0).all()
    one_minus_kappa = 1 - NOISE.kappa(t)[:, None]  # both sides are (1 - eps) / (1 - kappa) * -log p(x1 | x_t)
    assert torch.allclose(weighted * one_minus_kappa, nelbo * one_minus_kappa, rtol=1e-5, atol=1e-6)
    expected = (1 - EPS) / one_minus_kappa * -probs.gather(-1, x1[..., None]).squeeze(-1).log()
    assert torch.allclose(weighted[masked], expected.expand_as(weighted)[masked], rtol=1e-9)


@given(taus, seeds)
def test_uniform_score_entropy_is_minimised_by_the_exact_score(tau, seed):
    """E_{x1 ~ p(x1 | x_t)} SE(s, x_t, x1) has zero gradient in log s at the exact score (the ratios r_y are right)."""
    g = torch.Generator().manual_seed(seed)
    graph = make_graph("uniform", VOCAB)
    x_t = torch.randint(0, VOCAB, (2, 3), generator=g)
    probs = _posterior(VOCAB, (2, 3), g)
    kappa = NOISE.kappa(torch.full((2,), tau))
    log_s = _exact_uniform_log_score(probs, x_t, kappa).requires_grad_(True)
    expected = sum(probs[..., a] * graph.score_entropy(log_s, x_t, torch.full_like(x_t, a), kappa)
                   for a in range(VOCAB))
    (grad,) = torch.autograd.grad(expected.sum(), log_s)
    assert torch.allclose(grad, torch.zeros_like(grad), atol=1e-8)


# ---------------------------------------------------------------- the module


def test_module_is_a_denoiser_with_the_library_path():
    absorb, uniform = _module("absorb"), _module("uniform")
    assert absorb.path.source.name == "mask" and uniform.path.source.name == "uniform"
    assert absorb.net.input_vocab_size == VOCAB + 1 and uniform.net.input_vocab_size == VOCAB
    x = absorb.path.source.sample((2, LEN), None, "cpu")
    assert absorb(x, torch.rand(2)).shape == (2, LEN, VOCAB)
    # a fresh absorbing model outputs ~0: the scores of a masked position sum to 1 / (e^sigma - 1)
    t = torch.tensor([0.2, 0.7])
    total = absorb(x, t).exp().sum(-1)
    expected = (NOISE.kappa(t) / (1 - NOISE.kappa(t))).float()[:, None].expand(-1, LEN)
    assert torch.allclose(total, expected, rtol=0.2)


@pytest.mark.parametrize("graph", ["absorb", "uniform"])
@pytest.mark.parametrize("sampler", ["tweedie", "euler"])
def test_sample_is_valid_and_reproducible(graph, sampler):
    module = _module(graph)
    first = module.sample(5, 4, generator=torch.Generator().manual_seed(3), sampler=sampler, batch_size=3)
    again = module.sample(5, 4, generator=torch.Generator().manual_seed(3), sampler=sampler, batch_size=3)
    assert first.shape == (5, LEN) and first.dtype == torch.long
    assert ((first >= 0) & (first < VOCAB)).all()  # every position filled, no mask left
    assert torch.equal(first, again)
    assert module.training  # restored after sampling


def test_samplers_list_the_default_first():
    assert _module().samplers == ("tweedie", "euler")
    assert _module(sampler="euler").samplers == ("euler", "tweedie")


def test_sample_draws_every_step_through_the_jump_policy():
    calls = []

    class CountingJump(BlindJump):
        def transition(self, *args, **kwargs):
            calls.append(1)
            return super().transition(*args, **kwargs)

    module = _module()
    module.jump_policy = CountingJump()
    module.sample(3, 5, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 5
    calls.clear()
    module.sample(3, 2, generator=torch.Generator().manual_seed(0), jump=CountingJump(), sampler="euler")
    assert len(calls) == 2


def test_one_step_absorbing_sample_is_the_denoiser_at_full_noise():
    """A single step is the last step: every position is drawn from s / sum s, nothing stays masked."""
    module = _module()
    samples = module.sample(64, 1, generator=torch.Generator().manual_seed(0))
    assert ((samples >= 0) & (samples < VOCAB)).all()
    assert len(samples.unique()) > 1


@pytest.mark.parametrize("graph", ["absorb", "uniform"])
def test_tiny_fit_lowers_the_loss_and_loads_back(graph, tmp_path):
    datamodule = _datamodule()
    datamodule.setup()
    batches = [datamodule._val[i : i + 16] for i in range(0, 32, 16)]

    def held_out_loss(module) -> float:
        with torch.no_grad():  # the backbone has no dropout: train and eval mode agree
            return sum(module.loss(b, torch.Generator().manual_seed(k)).item()
                       for k in range(8) for b in batches) / (8 * len(batches))

    module = _module(graph, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    before = held_out_loss(module)
    ckpt = fit_checkpoint(module, tmp_path, 30, datamodule)
    assert read_checkpoint_header(ckpt)["kind"] == "sedd"
    loaded = load_module(ckpt, expected_kind="sedd")
    assert type(loaded) is SEDDModule and loaded.checkpoint_kind == "sedd"
    assert loaded.hparams.graph == graph and loaded.graph.name == graph
    assert loaded.data_card is not None and loaded.data_card["vocab_size"] == VOCAB
    after = held_out_loss(loaded)
    assert after < before, (before, after)
    x = loaded.sample(4, 3, generator=torch.Generator().manual_seed(0))
    assert ((x >= 0) & (x < VOCAB)).all()


class _ExactIidScore(torch.nn.Module):
    """The backbone output f whose graph log-score is the exact score of iid tokens with probabilities ``pi``:
    p_tau(y) = kappa pi_y + (1 - kappa) / V per position (uniform: log s_y = log p_tau(y) - log p_tau(x));
    absorb: s_y = kappa pi_y / (1 - kappa) at a masked position, i.e. f = log(V pi_y)."""

    def __init__(self, module: SEDDModule, pi: torch.Tensor) -> None:
        super().__init__()
        self.graph, self.noise, self.pi = module.graph, module.noise, pi

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        vocab = self.pi.numel()
        if self.graph.name == "absorb":
            return torch.log(vocab * self.pi).float().expand(*x_t.shape, vocab)
        kappa = self.noise.kappa(t)[:, None, None]
        p = (kappa * self.pi + (1 - kappa) / vocab).expand(*x_t.shape, vocab)
        return (p.log() - p.gather(-1, x_t[..., None]).log()).float()


@pytest.mark.parametrize("graph", ["absorb", "uniform"])
@pytest.mark.parametrize("sampler", ["tweedie", "euler"])
@pytest.mark.parametrize("steps", [8, 256])
def test_sampling_with_the_exact_score_reproduces_the_data_distribution(graph, sampler, steps):
    """End to end: the whole chain (prior, every step, the last denoising step) with the exact score of iid
    data draws tokens with the data's frequencies, within 4 standard errors per token."""
    pi = torch.tensor([0.45, 0.2, 0.15, 0.1, 0.07, 0.03], dtype=torch.float64)
    module = _module(graph, sampler)
    module.net = _ExactIidScore(module, pi)
    samples = module.sample(1024, steps, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(samples.flatten(), minlength=VOCAB).double() / samples.numel()
    se = (pi * (1 - pi) / samples.numel()).sqrt()
    assert ((freq - pi).abs() < 4 * se).all(), f"{graph} {sampler} {steps} steps: {freq.tolist()} vs {pi.tolist()}"
