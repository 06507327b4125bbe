"""The shared transformer's continuous input: a [B, L, V] float enters through the embedding matrix, so a one-hot
encoding computes exactly what its token ids compute, and gradients reach the embedding."""

from __future__ import annotations

import pytest
import torch
from conftest import SEQ_LEN, VOCAB


def test_one_hot_inputs_equal_token_ids(make_backbone, randomize):
    net = randomize(make_backbone(input_vocab_size=VOCAB, output_vocab_size=VOCAB))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (3, SEQ_LEN), generator=g)
    t = torch.rand(3, generator=g)
    one_hot = torch.nn.functional.one_hot(ids, VOCAB).float()
    assert torch.allclose(net(one_hot, t), net(ids, t), atol=1e-5)


def test_continuous_inputs_are_linear_in_the_embedding_and_train_it(make_backbone):
    net = make_backbone(input_vocab_size=VOCAB + 1, output_vocab_size=VOCAB).train()  # a mask row the input skips
    x = torch.randn(2, SEQ_LEN, VOCAB)
    net(x, torch.rand(2)).square().mean().backward()
    assert net.embed.weight.grad[:VOCAB].abs().sum() > 0 and net.embed.weight.grad[VOCAB].abs().sum() == 0


def test_a_continuous_input_wider_than_the_vocabulary_is_refused(make_backbone):
    with pytest.raises(ValueError, match=r"\[B, L, V\]"):
        make_backbone()(torch.randn(1, SEQ_LEN, VOCAB + 2), torch.rand(1))
