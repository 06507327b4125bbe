"""The DiT backbone: shapes, input validation, zero-initialised step conditioning, causality, init, attention backends."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch

from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.models.attention import attention

from conftest import SEQ_LEN, VOCAB

# `lightning_tsdfm.models.attention` the attribute is the function (re-exported), so fetch the submodule itself
attention_module = importlib.import_module("lightning_tsdfm.models.attention")


def _inputs(batch: int = 3, length: int = SEQ_LEN, vocab: int = VOCAB + 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, length), generator=g), torch.rand(batch, generator=g)


@pytest.mark.parametrize("length", [1, 5, SEQ_LEN])
def test_output_shape(make_backbone, length):
    model = make_backbone()
    x, t = _inputs(length=length)
    out = model(x, t)
    assert out.shape == (3, length, VOCAB)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_output_vocab_can_differ_from_input_vocab(make_backbone):
    model = make_backbone(input_vocab_size=20, output_vocab_size=7)
    x, t = _inputs(vocab=20)
    assert model(x, t).shape == (3, SEQ_LEN, 7)


def test_longer_than_max_seq_len_is_rejected(make_backbone):
    model = make_backbone()
    x, t = _inputs(length=SEQ_LEN + 1)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(x, t)


@pytest.mark.parametrize("bad_id", [-1, VOCAB + 1, 1000])
def test_token_id_out_of_range_is_rejected(make_backbone, bad_id):
    model = make_backbone()
    x, t = _inputs()
    x[1, 2] = bad_id
    with pytest.raises(ValueError, match="vocabulary"):
        model(x, t)


def test_input_values_are_read_on_the_cpu_always_and_on_an_accelerator_once(make_backbone):
    """Reading token ids back from an accelerator waits for it: the first forward there checks them, later ones do
    not (unless check_every_forward); on the CPU every forward checks them."""
    model = make_backbone()
    assert all(model._reads_values(torch.zeros(1, 2, dtype=torch.long)) for _ in range(3))
    on_device = torch.zeros(1, 2, dtype=torch.long, device="meta")
    assert model._reads_values(on_device) and not model._reads_values(on_device)
    model.check_every_forward = True
    assert model._reads_values(on_device) and model._reads_values(on_device)


def test_mask_id_is_a_valid_input(make_backbone):
    model = make_backbone()
    x = torch.full((2, SEQ_LEN), VOCAB)  # the mask id of a mask-source teacher
    assert model(x, torch.zeros(2)).shape == (2, SEQ_LEN, VOCAB)


def test_time_conditioned_model_needs_t(make_backbone):
    model = make_backbone()
    x, _ = _inputs()
    with pytest.raises(ValueError, match="t"):
        model(x)


def test_time_conditioning_changes_output_of_a_trained_model(make_backbone, randomize):
    model = randomize(make_backbone())
    x, _ = _inputs()
    a = model(x, torch.full((3,), 0.1))
    b = model(x, torch.full((3,), 0.9))
    assert not torch.allclose(a, b)


def test_step_embedding_starts_as_the_teacher(make_backbone, randomize):
    """A fresh student with step-size conditioning, loaded with a teacher's weights, computes the teacher."""
    torch.manual_seed(0)
    teacher = randomize(make_backbone())  # a 'trained' teacher: non-zero gates, so conditioning matters
    torch.manual_seed(0)
    student = make_backbone(step_size_conditioning=True)
    result = student.load_state_dict(teacher.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.startswith("step_embed.") for k in result.missing_keys)
    x, t = _inputs()
    h = torch.tensor([0.5, 1 / 64, 1.0])
    with torch.no_grad():
        expected = teacher(x, t)
        assert torch.equal(student(x, t, h), expected)
        assert torch.equal(student(x, t, None), expected)
        assert torch.equal(student(x, t, torch.full((3,), 0.25)), expected)
        # the test can fail: once the step embedding's last layer is non-zero, h changes the output
        torch.nn.init.normal_(student.step_embed.mlp[-1].weight, std=0.5)
        assert not torch.allclose(student(x, t, h), expected)


def test_fresh_student_ignores_h_and_fresh_model_ignores_conditioning(make_backbone):
    student = make_backbone(step_size_conditioning=True)
    x, t = _inputs()
    with torch.no_grad():
        assert torch.equal(student(x, t, torch.full((3,), 0.5)), student(x, t))
    last = student.step_embed.mlp[-1]
    assert torch.count_nonzero(last.weight) == 0 and torch.count_nonzero(last.bias) == 0


@pytest.mark.parametrize("time_conditioning", [True, False])
def test_causal_output_ignores_the_future(make_backbone, randomize, time_conditioning):
    model = randomize(make_backbone(causal=True, time_conditioning=time_conditioning))
    x, t = _inputs(batch=2)
    t = t if time_conditioning else None
    base = model(x, t)
    for i in range(SEQ_LEN - 1):
        changed = x.clone()
        changed[:, i + 1 :] = (changed[:, i + 1 :] + 1 + torch.arange(SEQ_LEN - i - 1)) % (VOCAB + 1)
        out = model(changed, t)
        assert torch.allclose(out[:, : i + 1], base[:, : i + 1], atol=1e-5), i
        assert not torch.allclose(out[:, i + 1], base[:, i + 1], atol=1e-5)


def test_bidirectional_output_sees_the_future(make_backbone, randomize):
    model = randomize(make_backbone(causal=False))
    x, t = _inputs(batch=2)
    base = model(x, t)
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % (VOCAB + 1)
    out = model(changed, t)
    # every earlier position reacts to a change of the last token
    diff = (out[:, :-1] - base[:, :-1]).abs().amax(dim=-1)
    assert torch.all(diff > 1e-6), diff


def test_init_std(tiny_config):
    torch.manual_seed(0)
    config = TransformerConfig(hidden_size=64, num_layers=1, num_heads=2, cond_size=32)
    model = DiffusionTransformer(config, 129, 128, 16)
    assert model.embed.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert model.head.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.count_nonzero(model.head.bias) == 0
    # adaLN-Zero: every modulation (shift, scale, gate) starts at zero
    for block in model.blocks:
        assert torch.count_nonzero(block.modulation.weight) == 0
    assert torch.count_nonzero(model.final_modulation.weight) == 0


def test_hidden_size_must_divide_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(hidden_size=30, num_heads=4)


def test_flash_backend_falls_back_to_sdpa_on_cpu(tiny_config, randomize, monkeypatch):
    monkeypatch.setattr(attention_module, "_warned", False)
    x, t = _inputs()
    torch.manual_seed(0)
    sdpa = randomize(DiffusionTransformer(tiny_config, VOCAB + 1, VOCAB, SEQ_LEN)).eval()
    flash_config = TransformerConfig(**{**tiny_config.__dict__, "attention_backend": "flash"})
    flash = DiffusionTransformer(flash_config, VOCAB + 1, VOCAB, SEQ_LEN).eval()
    flash.load_state_dict(sdpa.state_dict())
    with pytest.warns(UserWarning, match="falling back to torch SDPA"):
        out = flash(x, t)
    assert torch.equal(out, sdpa(x, t))


def test_flash_fallback_warns_only_once(monkeypatch):
    monkeypatch.setattr(attention_module, "_warned", False)
    q = torch.randn(1, 2, 4, 8)
    with pytest.warns(UserWarning):
        attention(q, q, q, backend="flash")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attention(q, q, q, backend="flash")


@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_reference(causal):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 8, generator=g) for _ in range(3))
    scores = q @ k.transpose(-1, -2) / 8**0.5
    if causal:
        scores = scores.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
    expected = torch.softmax(scores, -1) @ v
    assert torch.allclose(attention(q, k, v, causal=causal), expected, atol=1e-5)


def test_unknown_attention_backend_is_rejected(tiny_config):
    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(ValueError, match="backend"):
        attention(q, q, q, backend="xformers")
    with pytest.raises(ValueError, match="backend"):  # refused when the config is built, not at the first forward
        TransformerConfig(**{**tiny_config.__dict__, "attention_backend": "xformers"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["sdpa", "flash"])
def test_cuda_bf16_matches_cpu(tiny_config, randomize, backend):
    torch.manual_seed(0)
    config = TransformerConfig(**{**tiny_config.__dict__, "attention_backend": backend})
    model = randomize(DiffusionTransformer(config, VOCAB + 1, VOCAB, SEQ_LEN), std=0.05).eval()
    x, t = _inputs()
    expected = model(x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model.cuda()(x.cuda(), t.cuda()).float().cpu()
    assert torch.allclose(out, expected, atol=5e-2, rtol=5e-2)
