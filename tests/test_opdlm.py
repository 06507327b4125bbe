"""The OPDLM plugin's pieces: visibility, the converted student, teacher targets, stitched states, confidence
decoding and its draws through the jump policy, the losses."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.shaping import GuidedJump, make_selection

from conftest import randomize_

tsdfm_opdlm = pytest.importorskip("tsdfm_opdlm", reason="the OPDLM plugin is installed by `make install`")
from tsdfm_opdlm import (  # noqa: E402
    ConfidenceRule, block_causal_mask, confidence_decode, cross_entropy, doubled_mask, doubled_positions,
    random_states, student_from_causal, teacher_targets, top_k_forward_kl, trajectory_states,
)
from tsdfm_opdlm.student import block_logits, doubled_logits  # noqa: E402

V, L = 11, 8
SMALL = TransformerConfig(hidden_size=16, num_layers=2, num_heads=2, mlp_ratio=2, cond_size=16)


def _causal(seed: int = 0) -> DiffusionTransformer:
    net = DiffusionTransformer(SMALL, V, V, L + 1, time_conditioning=False, causal=True)
    return randomize_(net, seed=seed).eval()


def _tokens(batch: int = 3, length: int = L, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (batch, length), generator=torch.Generator().manual_seed(seed))


# ---- visibility

def test_block_causal_visibility_table():
    expected = torch.tensor([  # prompt | block 1 (2 tokens) | block 2 (2 tokens)
        [1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(block_causal_mask(1, 4, 2), expected)


def test_doubled_row_visibility_table():
    # [prompt | clean c0 c1 c2 c3 | noisy n0 n1 n2 n3], blocks of 2
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 1, 1, 0, 0],  # noisy block 1: the prompt and itself
        [1, 0, 0, 0, 0, 1, 1, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 1, 1],  # noisy block 2: the prompt, clean block 1 and itself
        [1, 1, 1, 0, 0, 0, 0, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(doubled_mask(1, 4, 2), expected)
    assert doubled_positions(1, 4).tolist() == [0, 1, 2, 3, 4, 1, 2, 3, 4]


def test_the_doubled_row_gives_each_block_the_logits_of_its_rollout_row():
    net = student_from_causal(_causal())
    prompt, x0 = torch.zeros(2, 1, dtype=torch.long), _tokens(2)
    x_t = torch.where(torch.rand(2, L, generator=torch.Generator().manual_seed(1)) < 0.5, V, x0)
    together = doubled_logits(net, prompt, x0, x_t, 2)
    for block in range(L // 2):
        row = torch.cat([x0[:, : 2 * block], x_t[:, 2 * block: 2 * block + 2], x0[:, 2 * block + 2:]], dim=1)
        torch.testing.assert_close(together[:, 2 * block: 2 * block + 2], block_logits(net, prompt, row, block, 2),
                                   rtol=1e-4, atol=1e-4)


# ---- the converted student

def test_the_converted_student_keeps_the_weights_and_adds_a_mean_mask_row():
    causal = _causal()
    student = student_from_causal(causal)
    assert student.input_vocab_size == V + 1 and not student.causal and student.time_embed is None
    torch.testing.assert_close(student.embed.weight[:V], causal.embed.weight)
    torch.testing.assert_close(student.embed.weight[V], causal.embed.weight.mean(0))
    x = _tokens()
    triangle = torch.ones(L, L, dtype=torch.bool).tril()
    torch.testing.assert_close(student(x, attn_mask=triangle), causal(x), rtol=1e-5, atol=1e-5)


# ---- teacher targets

def test_the_teacher_target_is_the_shifted_causal_forward():
    causal = _causal()
    prompt, x0 = torch.full((3, 1), 4), _tokens()
    target = teacher_targets(causal, prompt, x0)
    assert target.shape == (3, L, V)
    for k in range(L):
        alone = causal(torch.cat([prompt, x0[:, :k]], dim=1))[:, -1]
        torch.testing.assert_close(target[:, k], alone, rtol=1e-5, atol=1e-5)


def test_the_teacher_target_is_the_rolled_forward_read_at_the_completion():
    """The construction read as: the causal forward over [prompt | x0], rolled right by one so that row position j holds
    the prediction made at j - 1, read at the completion's positions 1..L."""
    causal = _causal()
    prompt, x0 = torch.full((2, 1), 3), _tokens(2)
    rolled = torch.roll(causal(torch.cat([prompt, x0], dim=1)), shifts=1, dims=1)
    torch.testing.assert_close(teacher_targets(causal, prompt, x0), rolled[:, 1:], rtol=1e-5, atol=1e-5)


# ---- stitched states

@settings(max_examples=30, deadline=None)
@given(block=st.sampled_from([1, 2, 4, 8]), steps=st.integers(1, 8), threshold=st.floats(0.0, 1.5), seed=st.integers(0, 999))
def test_every_stitched_block_keeps_a_mask_and_is_a_round_of_its_trajectory(block, steps, threshold, seed):
    steps = min(steps, block)
    rule = ConfidenceRule(block, steps, threshold)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, L, V, generator=g) * 3
    rollout = confidence_decode(lambda x, b: logits[:, b * block:(b + 1) * block], 4, L, rule, BlindJump(), V, g)
    x_t = trajectory_states(rollout.tokens, rollout.step_index, block, steps, V, g)
    masked = (x_t == V).view(4, L // block, block)
    assert masked.any(-1).all()
    assert torch.equal(torch.where(x_t == V, rollout.tokens, x_t), rollout.tokens)
    step_index = rollout.step_index.view(4, L // block, block)
    for b in range(4):  # the masked tokens of a block are those unmasked at rounds >= r, for one r
        for j in range(L // block):
            r = step_index[b, j][masked[b, j]].min()
            assert torch.equal(masked[b, j], step_index[b, j] >= r)


def test_trajectory_states_reach_the_fully_masked_block_and_never_the_clean_one():
    steps = torch.tensor([[0, 1, 1, 2]]).expand(200, -1)  # one block of 4, unmasked over 3 rounds
    x0 = torch.zeros(200, 4, dtype=torch.long)
    x_t = trajectory_states(x0, steps, 4, 4, V, torch.Generator().manual_seed(0))
    counts = (x_t == V).sum(-1)
    assert set(counts.tolist()) == {4, 3, 1}  # rounds 0, 1, 2; round 3 unmasked nothing, so it is never drawn


def test_random_states_keep_a_mask_in_every_block():
    x_t = random_states(_tokens(64), 2, V, torch.Generator().manual_seed(0))
    assert (x_t == V).view(64, L // 2, 2).any(-1).all()
    assert (x_t != V).any()


# ---- confidence decoding

@settings(max_examples=30, deadline=None)
@given(block=st.sampled_from([2, 4, 8]), steps=st.integers(1, 8), threshold=st.floats(0.0, 2.0), seed=st.integers(0, 999))
def test_the_decoding_rule_finishes_a_block_within_s_steps(block, steps, threshold, seed):
    steps = min(steps, block)
    rule = ConfidenceRule(block, steps, threshold)
    g = torch.Generator().manual_seed(seed)
    calls = []

    def logits(x, b):
        calls.append(b)
        return torch.randn(3, block, V, generator=g) * 4

    rollout = confidence_decode(logits, 3, L, rule, BlindJump(), V, g)
    assert not (rollout.tokens == V).any()
    for b in range(L // block):
        assert 1 <= calls.count(b) <= steps
    if threshold > 1:  # nothing is confident enough: n_s tokens at step s, exactly S steps a block
        assert all(calls.count(b) == steps for b in range(L // block))
        per_step = torch.stack([(rollout.step_index == s).sum(-1) for s in range(steps)], -1)
        assert per_step.tolist() == [[(L // block) * rule.tokens_at(s) for s in range(steps)]] * 3


def test_a_zero_threshold_unmasks_a_block_in_one_step():
    rule = ConfidenceRule(4, 4, 0.0)
    rollout = confidence_decode(lambda x, b: torch.zeros(2, 4, V), 2, L, rule, BlindJump(), V, torch.Generator())
    assert (rollout.step_index == 0).all()


class Recording(BlindJump):
    def __init__(self):
        super().__init__()
        self.calls = []

    def transition(self, x_t, kernel, t, h, generator=None):
        self.calls.append((x_t.clone(), kernel, t, h))
        return super().transition(x_t, kernel, t, h, generator)


def test_every_draw_goes_through_the_jump_policy_in_library_time():
    jump = Recording()
    rule = ConfidenceRule(4, 2, 2.0)
    confidence_decode(lambda x, b: torch.zeros(2, 4, V), 2, L, rule, jump, V, torch.Generator().manual_seed(0))
    assert len(jump.calls) == (L // 4) * 2
    for x_t, kernel, t, h in jump.calls:
        assert kernel.shape == (2, L, V + 1)
        torch.testing.assert_close(kernel.sum(-1), torch.ones(2, L))
        moving = kernel.max(-1).values < 1  # the block's masked tokens; delta(x) elsewhere, future masks stay masks
        assert moving.any() and (kernel[..., V][moving] == 0).all()  # a drawn token is never the mask id
        assert (x_t[moving] == V).all() and (moving.sum(-1) <= 4).all()
        torch.testing.assert_close(t, (x_t != V).float().mean(-1))
        assert ((t + h) <= 1).all()


def test_one_candidate_is_the_blind_rollout_bit_for_bit():
    g_logits = torch.Generator().manual_seed(3)
    logits = torch.randn(5, L, V, generator=g_logits)
    rule = ConfidenceRule(4, 2, 0.5)
    decode = lambda jump: confidence_decode(lambda x, b: logits[:, 4 * b: 4 * b + 4], 5, L, rule, jump, V,  # noqa: E731
                                            torch.Generator().manual_seed(7))
    guided = GuidedJump(lambda x, t: torch.rand(x.shape), 1, make_selection("argmin", 1.0))
    blind, shaped = decode(BlindJump()), decode(guided)
    assert torch.equal(blind.tokens, shaped.tokens) and torch.equal(blind.step_index, shaped.step_index)
    assert guided.calls == (L // 4) * 2


# ---- losses

def test_top_k_forward_kl_over_all_ids_is_top_k_with_k_the_vocabulary_and_zero_at_the_teacher():
    g = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(2, L, V, generator=g), torch.randn(2, L, V, generator=g)
    positions = torch.rand(2, L, generator=g) < 0.5
    torch.testing.assert_close(top_k_forward_kl(teacher, student, positions),
                               top_k_forward_kl(teacher, student, positions, top_k=V))
    assert top_k_forward_kl(teacher, student, positions) > 0
    assert top_k_forward_kl(teacher, teacher, positions).abs() < 1e-6


def test_losses_are_a_mean_per_sequence_then_over_sequences():
    logits = torch.zeros(2, 4, V)
    logits[0, 0, 1] = 5.0
    x0 = torch.ones(2, 4, dtype=torch.long)
    positions = torch.tensor([[True, False, False, False], [True, True, True, True]])
    per_token = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x0.flatten(), reduction="none").view(2, 4)
    expected = (per_token[0, 0] + per_token[1].mean()) / 2
    torch.testing.assert_close(cross_entropy(logits, x0, positions), expected)
