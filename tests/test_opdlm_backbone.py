"""The shared backbone's optional attention mask and position ids (used by block diffusion, e.g. the OPDLM plugin)."""

from __future__ import annotations

import pytest
import torch

from lightning_tsdfm.models.attention import attention

from conftest import SEQ_LEN, VOCAB


def _tokens(batch: int = 2, length: int = SEQ_LEN, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_a_lower_triangular_mask_is_causal_attention(make_backbone, randomize):
    causal = randomize(make_backbone(causal=True, time_conditioning=False))
    bidirectional = make_backbone(time_conditioning=False)
    bidirectional.load_state_dict(causal.state_dict())
    x = _tokens()
    triangle = torch.ones(SEQ_LEN, SEQ_LEN, dtype=torch.bool).tril()
    torch.testing.assert_close(bidirectional(x, attn_mask=triangle), causal(x), rtol=1e-5, atol=1e-5)


def test_default_positions_are_bit_for_bit_the_former_forward(make_backbone, randomize):
    model = randomize(make_backbone())
    x, t = _tokens(), torch.rand(2)
    assert torch.equal(model(x, t, position_ids=torch.arange(SEQ_LEN)), model(x, t))
    assert torch.equal(model(x, t, position_ids=torch.arange(SEQ_LEN).expand(2, -1)), model(x, t))


def test_rope_sees_only_relative_positions(make_backbone, randomize):
    model = randomize(make_backbone(max_seq_len=3 * SEQ_LEN))
    x, t = _tokens(), torch.rand(2)
    shifted = model(x, t, position_ids=torch.arange(SEQ_LEN) + SEQ_LEN)
    torch.testing.assert_close(shifted, model(x, t), rtol=1e-4, atol=1e-4)


def test_a_hidden_key_does_not_change_the_output(make_backbone, randomize):
    model = randomize(make_backbone())
    x = _tokens(batch=1)
    mask = torch.ones(SEQ_LEN, SEQ_LEN, dtype=torch.bool)
    mask[:, 3] = False
    mask[3, 3] = True  # token 3 still sees itself (a row needs at least one visible key)
    other = x.clone()
    other[0, 3] = (x[0, 3] + 1) % VOCAB
    t = torch.rand(1)
    a, b = model(x, t, attn_mask=mask), model(other, t, attn_mask=mask)
    keep = torch.arange(SEQ_LEN) != 3
    torch.testing.assert_close(a[:, keep], b[:, keep], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a[:, 3], b[:, 3])


def test_a_per_sequence_mask_broadcasts_over_heads():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    mask = torch.rand(2, 5, 5, generator=g) > 0.4
    mask |= torch.eye(5, dtype=torch.bool)
    expected = torch.stack([attention(q[i:i + 1], k[i:i + 1], v[i:i + 1], attn_mask=mask[i]) for i in range(2)]).squeeze(1)
    torch.testing.assert_close(attention(q, k, v, attn_mask=mask), expected)
    torch.testing.assert_close(attention(q, k, v, backend="flash", attn_mask=mask), expected)  # flash falls back


def test_max_seq_len_is_checked_on_positions_not_row_length(make_backbone):
    model = make_backbone()
    doubled = _tokens(length=2 * SEQ_LEN)
    positions = torch.cat([torch.arange(SEQ_LEN), torch.arange(SEQ_LEN)])
    assert model(doubled, torch.rand(2), position_ids=positions).shape == (2, 2 * SEQ_LEN, VOCAB)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(doubled, torch.rand(2), position_ids=torch.arange(2 * SEQ_LEN))
    with pytest.raises(ValueError, match="position_ids"):
        model(doubled, torch.rand(2), position_ids=torch.arange(SEQ_LEN))
