"""FS-DFM's teacher checkpoints (apple/ml-fs-dfm) load into the backbone and compute FS-DFM's function."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.models.fsdfm_layout import from_fsdfm_state_dict
from lightning_tsdfm.modules import TeacherModule, load_fsdfm_teacher, load_module

VOCAB, LEN, HIDDEN, BLOCKS, HEADS, COND = 11, 8, 32, 2, 4, 16


def fsdfm_state(masked: bool, student: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the names and shapes of FS-DFM's ``Transformer`` (model/transformer.py), random values."""
    g = torch.Generator().manual_seed(seed)
    d, c, rows = HIDDEN, COND, VOCAB + masked

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.3

    dh = d // HEADS
    state = {"vocab_embed.weight": rnd(rows, d),
             "time_embedding.mlp.0.weight": rnd(c, 256), "time_embedding.mlp.0.bias": rnd(c),
             "time_embedding.mlp.2.weight": rnd(c, c), "time_embedding.mlp.2.bias": rnd(c)}
    if student:
        state.update({"dt_embedding.mlp.0.weight": rnd(c, 256), "dt_embedding.mlp.0.bias": rnd(c),
                      "dt_embedding.mlp.2.weight": rnd(c, c), "dt_embedding.mlp.2.bias": rnd(c),
                      "time_condition_fuser.weight": rnd(2 * c, 2 * c), "time_condition_fuser.bias": rnd(2 * c)})
    state["rotary_emb.inv_freq"] = 1.0 / (10_000 ** (torch.arange(0, dh, 2).float() / dh))
    for i in range(BLOCKS):
        p = f"blocks.{i}."
        state.update({p + "norm1.weight": 1 + rnd(d), p + "qw.weight": rnd(d, d), p + "kw.weight": rnd(d, d),
                      p + "vw.weight": rnd(d, d), p + "attn_out.weight": rnd(d, d), p + "norm2.weight": 1 + rnd(d),
                      p + "mlp.0.weight": rnd(4 * d, d), p + "mlp.0.bias": rnd(4 * d),
                      p + "mlp.2.weight": rnd(d, 4 * d), p + "mlp.2.bias": rnd(d)})
        if student:
            state.update({p + "condition_fuser.weight": rnd(c, 2 * c), p + "condition_fuser.bias": rnd(c)})
        state.update({p + "adaLN_modulation.weight": rnd(6 * d, c), p + "adaLN_modulation.bias": rnd(6 * d)})
    state.update({"output_layer.norm_final.weight": 1 + rnd(d), "output_layer.linear.weight": rnd(rows, d),
                  "output_layer.linear.bias": rnd(rows),
                  "output_layer.adaLN_modulation.weight": rnd(2 * d, c), "output_layer.adaLN_modulation.bias": rnd(2 * d)})
    return state


def fsdfm_logits(s: dict[str, torch.Tensor], x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """FS-DFM's teacher forward written from its definition: sinusoids of t itself, rotate-half RoPE with
    separate q/k/v projections, scaled LayerNorms, adaLN; logits over every row of its output layer."""
    h = F.embedding(x, s["vocab_embed.weight"])
    b, n, d = h.shape
    freqs = torch.exp(-math.log(10000) * torch.arange(128).float() / 128)
    args = time[:, None].float() * freqs[None]
    emb = F.linear(F.silu(F.linear(torch.cat([args.cos(), args.sin()], -1), s["time_embedding.mlp.0.weight"],
                                   s["time_embedding.mlp.0.bias"])), s["time_embedding.mlp.2.weight"], s["time_embedding.mlp.2.bias"])
    c = F.silu(emb)
    dh = d // HEADS
    angles = torch.outer(torch.arange(n).float(), s["rotary_emb.inv_freq"])
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rope(v):  # [b, n, heads, dh]
        rotated = torch.cat([-v[..., dh // 2:], v[..., : dh // 2]], -1)
        return v * cos[:, None] + rotated * sin[:, None]

    for i in range(BLOCKS):
        p = f"blocks.{i}."
        sh1, sc1, g1, sh2, sc2, g2 = F.linear(c, s[p + "adaLN_modulation.weight"], s[p + "adaLN_modulation.bias"])[:, None].chunk(6, -1)
        y = F.layer_norm(h, [d]) * s[p + "norm1.weight"] * (1 + sc1) + sh1
        q, k, v = (F.linear(y, s[p + w]).view(b, n, HEADS, dh) for w in ("qw.weight", "kw.weight", "vw.weight"))
        q, k = rope(q), rope(k)
        a = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh), -1)
        o = torch.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, n, d)
        h = h + g1 * F.linear(o, s[p + "attn_out.weight"])
        y = F.layer_norm(h, [d]) * s[p + "norm2.weight"] * (1 + sc2) + sh2
        h = h + g2 * F.linear(F.gelu(F.linear(y, s[p + "mlp.0.weight"], s[p + "mlp.0.bias"]), approximate="tanh"),
                              s[p + "mlp.2.weight"], s[p + "mlp.2.bias"])
    shift, scale = F.linear(c, s["output_layer.adaLN_modulation.weight"], s["output_layer.adaLN_modulation.bias"])[:, None].chunk(2, -1)
    y = F.layer_norm(h, [d]) * s["output_layer.norm_final.weight"] * (1 + scale) + shift
    return F.linear(y, s["output_layer.linear.weight"], s["output_layer.linear.bias"])


def _inputs(masked: bool):
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, VOCAB, (3, LEN), generator=g)
    if masked:
        x = torch.where(torch.rand(3, LEN, generator=g) < 0.5, VOCAB, x)
    return x, torch.tensor([0.05, 0.5, 0.93])


@pytest.mark.parametrize("source", ["mask", "uniform"])
@pytest.mark.parametrize("wrap", ["teacher_model", "model", "module.", None])
def test_fsdfm_teacher_computes_fsdfms_logits(source, wrap):
    """Every data-token logit equals FS-DFM's forward (the mask source's extra mask logit is dropped)."""
    masked = source == "mask"
    state = fsdfm_state(masked)
    checkpoint = ({"module." + k: v for k, v in state.items()} if wrap == "module." else
                  {wrap: state, "step": 7} if wrap else state)
    module = load_fsdfm_teacher(checkpoint, num_heads=HEADS, source=source, seq_len=LEN, vocab_size=VOCAB).eval()
    assert module.hparams.vocab_size == VOCAB and module.net.config.time_scale == 1.0
    x, t = _inputs(masked)
    with torch.no_grad():
        ours = module.net(x, t)
    theirs = fsdfm_logits(state, x, t)[..., :VOCAB]
    assert ours.shape == theirs.shape == (3, LEN, VOCAB)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_loaded_teacher_saves_and_reloads_as_a_teacher(tmp_path):
    module = load_fsdfm_teacher(fsdfm_state(False), num_heads=HEADS, source="uniform", seq_len=LEN, vocab_size=VOCAB)
    path = tmp_path / "fsdfm.pth"
    torch.save({"teacher_model": fsdfm_state(False)}, path)
    from_file = load_fsdfm_teacher(path, num_heads=HEADS, source="uniform", seq_len=LEN, vocab_size=VOCAB)
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), from_file.state_dict().values()))
    import lightning as L

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=0)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "teacher.ckpt")
    loaded = load_module(tmp_path / "teacher.ckpt", expected_kind="teacher")
    assert isinstance(loaded, TeacherModule) and loaded.net.config.time_scale == 1.0
    x, t = _inputs(False)
    assert torch.equal(loaded.eval().net(x, t), module.eval().net(x, t))


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="FS-DFM student .*Load the teacher instead"):
        load_fsdfm_teacher(fsdfm_state(False, student=True), num_heads=HEADS, source="uniform")
    with pytest.raises(KeyError, match="No teacher in this FS-DFM checkpoint"):
        load_fsdfm_teacher({"student_ema_model": {}, "step": 3}, num_heads=HEADS, source="uniform")
    with pytest.raises(KeyError, match="Not FS-DFM's transformer layout"):
        from_fsdfm_state_dict({**fsdfm_state(False), "lm_head.weight": torch.zeros(1)}, HEADS, masked=False)
    with pytest.raises(ValueError, match="pass the checkpoint's flow.source_distribution"):
        load_fsdfm_teacher(fsdfm_state(False), num_heads=HEADS, source="mask", vocab_size=VOCAB)
    with pytest.raises(ValueError, match="is num_heads=2 FS-DFM's n_heads"):
        from_fsdfm_state_dict(fsdfm_state(False), 2, masked=False)


@pytest.mark.parametrize("masked", [False, True])
def test_a_checkpoint_loaded_as_the_other_source_is_refused(masked):
    """FS-DFM's embedding and output layer both have V + 1 rows with a mask source and V with a uniform one: the
    source is told by the rows against the data vocabulary (GPT-2's unless given), never taken on trust."""
    gpt2 = {"vocab_embed.weight": torch.zeros(50257 + masked, HIDDEN),
            "output_layer.linear.weight": torch.zeros(50257 + masked, HIDDEN),
            "output_layer.linear.bias": torch.zeros(50257 + masked)}
    wrong = "uniform" if masked else "mask"
    for state, vocab in (({**fsdfm_state(masked), **gpt2}, {}), (fsdfm_state(masked), {"vocab_size": VOCAB})):
        with pytest.raises(ValueError, match=f"a {wrong!r} source over .* pass the checkpoint's flow.source_distribution "
                                             f"as source \\(its .* rows are a {('mask' if masked else 'uniform')!r} source"):
            load_fsdfm_teacher(state, num_heads=HEADS, source=wrong, **vocab)
    right = load_fsdfm_teacher({**fsdfm_state(masked), **gpt2}, num_heads=HEADS, source="mask" if masked else "uniform")
    assert right.net.head.weight.shape[0] == 50257
    with pytest.raises(ValueError, match="not GPT-2's 50257"):  # another vocabulary, not given
        load_fsdfm_teacher(fsdfm_state(masked), num_heads=HEADS, source="mask" if masked else "uniform")
    ragged = {**fsdfm_state(masked), "output_layer.linear.weight": torch.zeros(VOCAB + masked - 1, HIDDEN),
              "output_layer.linear.bias": torch.zeros(VOCAB + masked - 1)}
    with pytest.raises(ValueError, match="embedding has .* rows but its output layer"):
        load_fsdfm_teacher(ragged, num_heads=HEADS, source="mask" if masked else "uniform", vocab_size=VOCAB)


def test_time_scale_default_is_unchanged():
    """Backbones built before ``time_scale`` existed embed 1000 t, as they always did."""
    assert TransformerConfig().time_scale == 1000.0
    old = TransformerConfig(hidden_size=8, num_layers=1, num_heads=2, cond_size=8)
    del old.__dict__["time_scale"]  # what unpickling a config saved before the field existed gives
    assert DiffusionTransformer(old, 5, 4, 8).time_embed.scale == 1000.0
    with pytest.raises(ValueError, match="time_scale must be positive"):
        TransformerConfig(time_scale=0.0)
