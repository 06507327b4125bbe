"""Sequences longer than the model's length: windows of L positions that advance by the stride, each conditioned on
the tail of what came before; the output has the asked length, every window's conditioned tail is kept, and known
tokens anywhere in the long sequence stay."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_tsdfm.cli import main
from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.samples_io import read_jsonl
from lightning_tsdfm.semi_autoregressive import sample_long, window_starts


class RecordingSampler:
    """A model of length L that fills every free position with a fresh number and records the windows it was given."""

    def __init__(self, seq_len: int) -> None:
        self.seq_len = seq_len
        self.windows: list[Given] = []
        self.counter = 100

    def __call__(self, window: Given) -> torch.Tensor:
        assert window.length == self.seq_len
        self.windows.append(Given(window.tokens.clone(), window.known.clone()))
        fresh = torch.arange(window.tokens.numel()).view_as(window.tokens) + self.counter
        self.counter += window.tokens.numel()
        return window.impose(fresh)


@settings(max_examples=40)
@given(st.integers(2, 12), st.integers(1, 40), st.data())
def test_windows_cover_the_length_and_each_keeps_the_tail_before_it(seq_len, extra, data):
    length = seq_len + extra
    stride = data.draw(st.integers(1, seq_len - 1))
    starts = window_starts(length, seq_len, stride)
    assert starts[0] == 0 and starts[-1] + seq_len == length
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))

    sampler = RecordingSampler(seq_len)
    out = sample_long(sampler, Given.nothing(2, length), seq_len, stride)
    assert out.shape == (2, length)
    assert (out >= 100).all()  # every position generated
    end = 0
    for start, window in zip(starts, sampler.windows):
        tail = slice(0, end - start)  # the window's positions that earlier windows generated
        assert window.known[:, tail].all() and not window.known[:, end - start:].any()
        assert torch.equal(window.tokens[:, tail], out[:, start:end])  # conditioned on what is in the output
        end = start + seq_len


def test_known_tokens_anywhere_in_a_long_sequence_stay_and_a_long_prompt_skips_its_windows():
    seq_len, length = 4, 13
    tokens = torch.zeros(1, length, dtype=torch.long)
    known = torch.zeros(1, length, dtype=torch.bool)
    tokens[0, :6], known[0, :6] = torch.arange(1, 7), True  # a prompt longer than L
    tokens[0, 11], known[0, 11] = 42, True  # a known token near the end
    sampler = RecordingSampler(seq_len)
    out = sample_long(sampler, Given(tokens, known), seq_len, stride=2)
    assert out[0, :6].tolist() == [1, 2, 3, 4, 5, 6] and out[0, 11] == 42 and (out[0, 6:11] >= 100).all()
    assert len(sampler.windows) == 4  # of the starts 0, 2, 4, 6, 8, 9: those inside the prompt are skipped
    assert sampler.windows[0].tokens[0, :2].tolist() == [5, 6]  # the first sampled window starts at 4: the tail


def test_a_shorter_length_is_the_prefix_of_one_window():
    sampler = RecordingSampler(8)
    assert sample_long(sampler, Given.nothing(3, 5), 8).shape == (3, 5) and len(sampler.windows) == 1


def test_a_stride_without_a_tail_is_refused():
    with pytest.raises(UserError, match=r"stride .* must be in \[1, 7\] .* keeps L - stride tokens"):
        window_starts(20, 8, 8)


@pytest.fixture(scope="module")
def mask_teacher(tmp_path_factory):
    from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, tiny_synthetic

    from lightning_tsdfm.modules import TeacherModule

    torch.manual_seed(0)
    return fit_checkpoint(TeacherModule(TINY_VOCAB, TINY_LEN, backbone=TINY_TEACHER),
                          tmp_path_factory.mktemp("teacher"), 1, tiny_synthetic())


@pytest.mark.parametrize("sampler", ["ancestral", "first_hitting"])
def test_tsdfm_sample_length_past_the_model(mask_teacher, tmp_path, sampler):
    out = tmp_path / "long.jsonl"
    main(["sample", "--checkpoint", str(mask_teacher), "--output", str(out), "--steps", "4", "--num_samples", "2",
          "--prompt", "t1 t2 t3", "--length", "21", "--stride", "3", "--sampler", sampler])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["tokens"]) for r in rows] == [21, 21] and rows[0]["length"] == 21 and rows[0]["stride"] == 3
    assert all(r["tokens"][:3] == [1, 2, 3] and r["given_positions"] == [0, 1, 2] for r in rows)
    samples = read_jsonl(out)  # a long sample file reads back (its rows may exceed the card's seq_len)
    assert samples.tokens.shape == (2, 21) and samples.meta["length"] == 21
    main(["evaluate", str(out), "--judges", "oracle", "--max_tokens", "21"])
