"""The MDLM plugin: its kernel, its samplers, MDLM's checkpoint layout, and SDTT distillation (also shaped)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import Callback
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import CompassModule, SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.jumps import BlindJump, mixture_kernel
from lightning_tsdfm.losses import reverse_kl
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.shaping import TrajectoryShaper

tsdfm_mdlm = pytest.importorskip("tsdfm_mdlm", reason="the MDLM plugin is installed by `make install`")
from tsdfm_mdlm import CachedDenoiser, MDLMModule, SDTTModule, from_mdlm_state_dict, to_mdlm_state_dict  # noqa: E402

VOCAB, LEN = 8, 8
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16, norm_weights=True)


def _datamodule() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=4, seq_len=LEN, num_train=8, num_val=4, batch_size=4)


def _mdlm(**kwargs) -> MDLMModule:
    torch.manual_seed(0)
    return MDLMModule(VOCAB, LEN, backbone=BACKBONE, **kwargs)


# ---- the kernel: MDLM's ancestral step is the mixture path's blind jump

@settings(max_examples=40, deadline=None)
@given(t=st.floats(0.0, 0.99), h=st.floats(0.001, 1.0), seed=st.integers(0, 2**16))
def test_kernel_rows_sum_to_one_and_never_return_to_the_mask(t, h, seed):
    module = _mdlm()
    g = torch.Generator().manual_seed(seed)
    x_t = module.path.sample(torch.randint(0, VOCAB, (3, LEN), generator=g), torch.full((3,), t), g)
    tt, hh = torch.full((3,), t), torch.full((3,), min(h, 1 - t))
    probs = torch.softmax(module(x_t, tt).double(), dim=-1)
    kernel = mixture_kernel(x_t, probs, tt, hh, module.path)
    assert torch.allclose(kernel.sum(-1), torch.ones(3, LEN, dtype=kernel.dtype))
    assert (kernel >= 0).all()
    mask = module.path.source.mask_id
    revealed = x_t != mask
    assert (kernel[..., mask][revealed] == 0).all()  # absorbing: a revealed token never goes back
    assert torch.equal(kernel[revealed].argmax(-1), x_t[revealed])  # ... and never changes
    if t + hh[0].item() >= 1.0:
        assert (kernel[..., mask] == 0).all()  # the last step fills every position


def test_ancestral_draws_follow_the_kernel():
    """Empirical frequencies of the blind jump match q(x_{t+h} | x_t) within 4 standard errors."""
    module = _mdlm()
    x_t = torch.tensor([[VOCAB, 3, VOCAB, VOCAB, 1, VOCAB, VOCAB, 0]])
    t, h = torch.tensor([0.25]), torch.tensor([0.25])
    probs = torch.softmax(module(x_t, t).double(), dim=-1)
    kernel = mixture_kernel(x_t, probs, t, h, module.path)[0]
    n = 20_000
    g = torch.Generator().manual_seed(0)
    draws = BlindJump()(x_t.expand(n, -1), probs.expand(n, -1, -1), t.expand(n), h.expand(n), module.path, g)
    freq = F.one_hot(draws, VOCAB + 1).double().mean(0)
    stderr = (kernel * (1 - kernel) / n).sqrt()
    assert ((freq - kernel).abs() <= 4 * stderr + 1e-9).all()


# ---- training and sampling

def test_antithetic_times_are_stratified():
    module = _mdlm()
    t, _ = module.path_sample(torch.zeros(16, LEN, dtype=torch.long), torch.Generator().manual_seed(0))
    gaps = torch.diff(torch.sort(t).values)
    assert torch.allclose(gaps, torch.full_like(gaps, module.t_max / 16), atol=1e-5)


def test_loss_is_the_continuous_time_nelbo():
    module = _mdlm()
    x1 = torch.randint(0, VOCAB, (4, LEN), generator=torch.Generator().manual_seed(1))
    t, x_t = module.path_sample(x1, torch.Generator().manual_seed(2))
    nll = F.cross_entropy(module(x_t, t).flatten(0, 1), x1.flatten(), reduction="none").view_as(x1)
    expected = ((x_t == VOCAB) * nll / (1 - t)[:, None]).mean()
    from lightning_tsdfm.losses import generalized_kl

    assert torch.allclose(generalized_kl(module(x_t, t), x1, x_t, t, module.path).mean(), expected, atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 5])
def test_cached_sampler_draws_the_ancestral_samples_with_fewer_forwards(batch_size):
    module = _mdlm()
    ancestral = module.sample(5, 64, generator=torch.Generator().manual_seed(3), batch_size=batch_size)
    cached = module.sample(5, 64, generator=torch.Generator().manual_seed(3), batch_size=batch_size, sampler="cached")
    assert torch.equal(ancestral, cached)
    assert (cached < VOCAB).all()
    counter = CachedDenoiser(module)
    module.sampling_denoiser = lambda sampler: counter
    module.sample(5, 64, generator=torch.Generator().manual_seed(3), sampler="cached")
    assert counter.forwards <= 5 * (LEN + 1) < 5 * 64  # at most one forward per reveal event, plus the first


def test_sampler_errors_are_clear():
    with pytest.raises(ValueError, match="no sampler 'ddim'"):
        _mdlm().sample(2, 4, sampler="ddim")
    with pytest.raises(ValueError, match="time-unconditioned"):
        _mdlm(time_conditioning=True).sample(2, 4, sampler="cached")


def test_fit_checkpoint_loads_back_as_mdlm(tmp_path):
    module = _mdlm()
    ckpt = fit_checkpoint(module, tmp_path, 3, _datamodule())
    loaded = load_module(ckpt, expected_kind="mdlm")
    assert isinstance(loaded, MDLMModule)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), module.state_dict().values()))
    with pytest.raises(ValueError, match="'mdlm' checkpoint, but a 'teacher'"):
        load_module(ckpt, expected_kind="teacher")


# ---- MDLM's public checkpoint layout

def _mdlm_layout_state(cfg: TransformerConfig, vocab_with_mask: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the names and shapes of MDLM's DIT (models/dit.py), random values."""
    g = torch.Generator().manual_seed(seed)
    d, c, r = cfg.hidden_size, cfg.cond_size, cfg.mlp_ratio

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    state = {"backbone.vocab_embed.embedding": rnd(vocab_with_mask, d),
             "backbone.sigma_map.mlp.0.weight": rnd(c, 256), "backbone.sigma_map.mlp.0.bias": rnd(c),
             "backbone.sigma_map.mlp.2.weight": rnd(c, c), "backbone.sigma_map.mlp.2.bias": rnd(c),
             "backbone.rotary_emb.inv_freq": 1.0 / 10000 ** (torch.arange(0, d // cfg.num_heads, 2).float() / (d // cfg.num_heads))}
    for i in range(cfg.num_layers):
        p = f"backbone.blocks.{i}."
        state.update({p + "norm1.weight": 1 + rnd(d), p + "attn_qkv.weight": rnd(3 * d, d), p + "attn_out.weight": rnd(d, d),
                      p + "norm2.weight": 1 + rnd(d), p + "mlp.0.weight": rnd(r * d, d), p + "mlp.0.bias": rnd(r * d),
                      p + "mlp.2.weight": rnd(d, r * d), p + "mlp.2.bias": rnd(d),
                      p + "adaLN_modulation.weight": rnd(6 * d, c), p + "adaLN_modulation.bias": rnd(6 * d)})
    state.update({"backbone.output_layer.norm_final.weight": 1 + rnd(d),
                  "backbone.output_layer.linear.weight": rnd(vocab_with_mask, d),
                  "backbone.output_layer.linear.bias": rnd(vocab_with_mask),
                  "backbone.output_layer.adaLN_modulation.weight": rnd(2 * d, c),
                  "backbone.output_layer.adaLN_modulation.bias": rnd(2 * d)})
    return state


def _mdlm_reference_logits(state, x, sigma, num_heads, mask_index):
    """MDLM's DIT forward written from its definition (rotate-half RoPE, scaled LayerNorms), then SUBS."""
    s = {k.removeprefix("backbone."): v for k, v in state.items()}
    h = s["vocab_embed.embedding"][x]
    b, n, d = h.shape
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half) / half)
    args = sigma[:, None] * freqs[None]
    c = F.linear(F.silu(F.linear(torch.cat([args.cos(), args.sin()], -1), s["sigma_map.mlp.0.weight"], s["sigma_map.mlp.0.bias"])),
                 s["sigma_map.mlp.2.weight"], s["sigma_map.mlp.2.bias"])
    c = F.silu(c)
    dh = d // num_heads
    angles = torch.outer(torch.arange(n).float(), s["rotary_emb.inv_freq"])
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rotate_half(v):
        return torch.cat([-v[..., dh // 2:], v[..., : dh // 2]], -1)

    i = 0
    while f"blocks.{i}.attn_qkv.weight" in s:
        p = f"blocks.{i}."
        sh1, sc1, g1, sh2, sc2, g2 = F.linear(c, s[p + "adaLN_modulation.weight"], s[p + "adaLN_modulation.bias"])[:, None].chunk(6, -1)
        y = F.layer_norm(h, [d]) * s[p + "norm1.weight"] * (1 + sc1) + sh1
        q, k, v = (y @ s[p + "attn_qkv.weight"].T).view(b, n, 3, num_heads, dh).unbind(2)
        q, k = (q * cos[:, None] + rotate_half(q) * sin[:, None]), (k * cos[:, None] + rotate_half(k) * sin[:, None])
        a = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh), -1)
        o = torch.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, n, d)
        h = h + g1 * (o @ s[p + "attn_out.weight"].T)
        y = F.layer_norm(h, [d]) * s[p + "norm2.weight"] * (1 + sc2) + sh2
        h = h + g2 * F.linear(F.gelu(F.linear(y, s[p + "mlp.0.weight"], s[p + "mlp.0.bias"]), approximate="tanh"),
                              s[p + "mlp.2.weight"], s[p + "mlp.2.bias"])
        i += 1
    shift, scale = F.linear(c, s["output_layer.adaLN_modulation.weight"], s["output_layer.adaLN_modulation.bias"])[:, None].chunk(2, -1)
    y = F.layer_norm(h, [d]) * s["output_layer.norm_final.weight"] * (1 + scale) + shift
    logits = F.linear(y, s["output_layer.linear.weight"], s["output_layer.linear.bias"])
    keep = [v for v in range(logits.shape[-1]) if v != mask_index]
    return logits[..., keep]


@pytest.mark.parametrize("time_conditioning", [False, True])
@pytest.mark.parametrize("mask_index", [None, 0])
def test_mdlm_layout_loads_and_computes_mdlms_function(time_conditioning, mask_index):
    cfg = TransformerConfig(hidden_size=32, num_layers=2, num_heads=4, mlp_ratio=2, cond_size=16, norm_weights=True)
    module = MDLMModule(VOCAB, LEN, backbone=cfg, time_conditioning=time_conditioning).eval()
    state = _mdlm_layout_state(cfg, VOCAB + 1)
    module.load_mdlm_backbone(state, mask_index=mask_index)
    ours_mask = VOCAB
    theirs_mask = VOCAB if mask_index is None else mask_index
    g = torch.Generator().manual_seed(5)
    data = torch.randint(0, VOCAB, (3, LEN), generator=g)
    masked = torch.rand(3, LEN, generator=g) < 0.5
    x_ours = torch.where(masked, ours_mask, data)
    ids = torch.tensor([v for v in range(VOCAB + 1) if v != theirs_mask] + [theirs_mask])  # our id -> MDLM id
    x_theirs = ids[x_ours]
    t = torch.tensor([0.2, 0.5, 0.9])
    sigma = module.time_input(t) * 1000
    ours = module(x_ours, t)
    theirs = _mdlm_reference_logits(state, x_theirs, sigma, cfg.num_heads, theirs_mask)
    assert torch.allclose(ours[masked], theirs[masked], atol=1e-4), (ours[masked] - theirs[masked]).abs().max()


def test_layout_round_trip_and_unknown_keys():
    cfg = TransformerConfig(hidden_size=32, num_layers=2, num_heads=4, mlp_ratio=2, cond_size=16, norm_weights=True)
    state = {k.removeprefix("backbone."): v for k, v in _mdlm_layout_state(cfg, VOCAB + 1).items()}
    back = to_mdlm_state_dict(from_mdlm_state_dict(state, cfg.num_heads), cfg.num_heads)
    assert set(back) == set(state)  # every tensor MDLM's DIT loads strictly, rotary_emb.inv_freq included
    for name, tensor in back.items():
        if name.startswith("output_layer.linear"):
            assert torch.equal(tensor[:VOCAB], state[name][:VOCAB])  # the mask row is SUBS's -inf, kept as zero
        else:
            assert torch.equal(tensor, state[name]), name
    with pytest.raises(KeyError, match="Not part of MDLM's DIT layout"):
        from_mdlm_state_dict({**state, "backbone.lm_head.weight": torch.zeros(1)}, cfg.num_heads)
    with pytest.raises(ValueError, match="norm_weights=True"):
        MDLMModule(VOCAB, LEN, backbone=TransformerConfig(hidden_size=32, num_heads=4)).load_mdlm_backbone(state)


# ---- SDTT

@pytest.fixture(scope="module")
def mdlm_ckpt(tmp_path_factory):
    return fit_checkpoint(_mdlm(optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1)), tmp_path_factory.mktemp("mdlm"), 3, _datamodule())


def _sdtt(mdlm_ckpt, **kwargs) -> SDTTModule:
    torch.manual_seed(0)
    defaults = dict(teacher_steps=16, num_rounds=2, steps_per_round=2, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    return SDTTModule(str(mdlm_ckpt), VOCAB, LEN, **{**defaults, **kwargs})


def test_sdtt_starts_as_its_teacher_and_counts_rounds(mdlm_ckpt):
    teacher = load_module(mdlm_ckpt)
    student = _sdtt(mdlm_ckpt)
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), teacher.state_dict().values()))
    assert student.data_card == teacher.data_card
    assert [student.student_step_size(r) for r in range(2)] == [2 / 16, 4 / 16]
    with pytest.raises(ValueError, match="not divisible"):
        _sdtt(mdlm_ckpt, teacher_steps=12, num_rounds=3)
    with pytest.raises(ValueError, match="'mdlm' or 'mdlm_sdtt' checkpoint"):
        SDTTModule(str(fit_checkpoint(TeacherModule(VOCAB, LEN, backbone=BACKBONE), mdlm_ckpt.parent / "t", 1, _datamodule())),
                   VOCAB, LEN)


def test_sdtt_loss_is_the_reverse_kl_on_masked_positions_and_finite(mdlm_ckpt):
    """Revealed positions carry -inf SUBS logits; the loss must skip them (it was NaN there) and equal the
    mean reverse KL over the masked positions, with finite gradients."""
    student = _sdtt(mdlm_ckpt)
    student.on_train_batch_start(None, 0)
    x1 = torch.randint(0, VOCAB, (8, LEN), generator=torch.Generator().manual_seed(0))
    t = torch.full((8,), 0.5)
    x_t = student.path.sample(x1, t, torch.Generator().manual_seed(0))
    masked = student.path.source.unsettled(x_t)
    assert masked.any() and (~masked).any()
    target = student.two_step_target(x_t, t, torch.full((8,), 0.25), torch.Generator().manual_seed(1))
    logits = student(x_t, t)
    loss = reverse_kl(logits, target, masked)
    p, q = torch.softmax(logits[masked], -1), target[masked]
    assert torch.isfinite(loss) and torch.allclose(loss, (p * (p.log() - q.log())).sum(-1).mean(), atol=1e-5)
    loss.backward()
    assert all(torch.isfinite(w.grad).all() for w in student.parameters() if w.grad is not None)
    assert reverse_kl(logits, target, torch.zeros_like(masked)) == 0


class CountingJump(BlindJump):
    calls = 0

    def __call__(self, *args, **kwargs):
        CountingJump.calls += 1
        return super().__call__(*args, **kwargs)


def test_sdtt_midpoints_call_the_policy_and_rounds_renew_the_teacher(mdlm_ckpt, tmp_path):
    student = _sdtt(mdlm_ckpt)
    student.jump_policy = CountingJump()
    seen = []

    class Spy(Callback):
        def on_train_batch_end(self, trainer, module, *args):
            seen.append((module._teacher_round, id(module._round_teacher)))

    quick_trainer(tmp_path, 4, [Spy()]).fit(student, datamodule=_datamodule())
    assert CountingJump.calls == 4
    assert [r for r, _ in seen] == [0, 0, 1, 1]
    assert seen[0][1] == seen[1][1] != seen[2][1]
    trainer = quick_trainer(tmp_path, 4)
    trainer.fit(student, datamodule=_datamodule())  # already at max_steps: nothing trained, just attach
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    loaded = load_module(tmp_path / "end.ckpt", expected_kind="mdlm-sdtt")
    assert loaded._teacher_round == 1
    for a, b in zip(loaded._round_teacher.module.state_dict().values(), student._round_teacher.module.state_dict().values()):
        assert torch.equal(a, b)


def _fit_sdtt(mdlm_ckpt, root, callbacks=()):
    student = _sdtt(mdlm_ckpt)
    quick_trainer(root, 3, list(callbacks)).fit(student, datamodule=_datamodule())
    return student


def test_sdtt_is_shapeable_by_the_trajectory_shaper(mdlm_ckpt, tmp_path):
    torch.manual_seed(0)
    teacher = fit_checkpoint(TeacherModule(VOCAB, LEN, backbone=TransformerConfig(hidden_size=16, num_layers=1, num_heads=2,
                                                                                  mlp_ratio=2, cond_size=16)),
                             tmp_path / "teacher", 2, _datamodule())
    compass = CompassModule(str(teacher), VOCAB, LEN, backbone=TransformerConfig(hidden_size=8, num_layers=1, num_heads=2,
                                                                                mlp_ratio=2, cond_size=8), optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    trainer = quick_trainer(tmp_path / "compass", 2)
    trainer.fit(compass, datamodule=_datamodule())
    trainer.save_checkpoint(tmp_path / "compass.ckpt")

    blind = _fit_sdtt(mdlm_ckpt, tmp_path / "blind")
    single = _fit_sdtt(mdlm_ckpt, tmp_path / "k1", [TrajectoryShaper(str(tmp_path / "compass.ckpt"), num_candidates=1)])
    shaper = TrajectoryShaper(str(tmp_path / "compass.ckpt"), num_candidates=4)
    shaped = _fit_sdtt(mdlm_ckpt, tmp_path / "k4", [shaper])
    same = [torch.equal(a, b) for a, b in zip(blind.state_dict().values(), single.state_dict().values())]
    assert all(same)  # K = 1 is blind SDTT bit for bit
    assert not all(torch.equal(a, b) for a, b in zip(blind.state_dict().values(), shaped.state_dict().values()))
    assert isinstance(shaped.jump_policy, BlindJump)  # teardown restored the blind jump


def test_cli_samples_with_the_cached_sampler(mdlm_ckpt, tmp_path):
    from lightning_tsdfm.cli import main
    from lightning_tsdfm.samples_io import read_jsonl

    main(["sample", "--checkpoint", str(mdlm_ckpt), "--output", str(tmp_path / "c.jsonl"), "--steps", "32",
          "--num_samples", "4", "--sampler", "cached"])
    main(["sample", "--checkpoint", str(mdlm_ckpt), "--output", str(tmp_path / "a.jsonl"), "--steps", "32",
          "--num_samples", "4"])
    cached, ancestral = read_jsonl(tmp_path / "c.jsonl"), read_jsonl(tmp_path / "a.jsonl")
    assert cached.meta["sampler"] == "cached" and ancestral.meta["sampler"] == "ancestral"
    assert torch.equal(cached.tokens, ancestral.tokens)
