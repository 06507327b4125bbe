"""Matched-entropy interpolation and the mode-coverage figures (reverse perplexity, distinct n-grams)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_tsdfm.metrics.diversity import distinct_ngrams, reverse_perplexity
from lightning_tsdfm.metrics.frontier import SweepPoint, matched_perplexity


@given(a=st.floats(0.5, 3.0), b=st.floats(0.1, 2.0), reference=st.floats(2.0, 3.0))
def test_interpolation_is_exact_on_a_log_linear_curve(a, b, reference):
    points = [SweepPoint(t, 2.0 + t, math.exp(a + b * (2.0 + t)), 0.01) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    matched = matched_perplexity(points, reference)
    assert math.log(matched.gen_ppl) == pytest.approx(a + b * reference, rel=1e-9)
    lo, hi = matched.temperatures
    assert 2.0 + lo <= reference <= 2.0 + hi and hi - lo == pytest.approx(0.25)


def test_standard_error_of_the_interpolated_point():
    points = [SweepPoint(0.5, 1.0, 10.0, 0.03), SweepPoint(1.0, 2.0, 20.0, 0.04)]
    matched = matched_perplexity(points, 1.25)
    assert matched.gen_ppl == pytest.approx(math.exp(0.75 * math.log(10) + 0.25 * math.log(20)))
    assert matched.nll_stderr == pytest.approx(math.sqrt((0.75 * 0.03) ** 2 + (0.25 * 0.04) ** 2))


def test_reverse_perplexity_is_interpolated_with_the_same_weight():
    points = [SweepPoint(0.5, 1.0, 10.0, 0.03, reverse_ppl=30.0), SweepPoint(1.0, 2.0, 20.0, 0.04, reverse_ppl=20.0)]
    assert matched_perplexity(points, 1.25).reverse_ppl == pytest.approx(math.exp(0.75 * math.log(30) + 0.25 * math.log(20)))
    assert matched_perplexity([SweepPoint(0.5, 1.0, 10.0, 0.03), points[1]], 1.25).reverse_ppl is None


def test_a_reference_outside_the_sweep_is_not_extrapolated():
    points = [SweepPoint(0.5, 1.0, 10.0, 0.03), SweepPoint(1.0, 2.0, 20.0, 0.04)]
    assert matched_perplexity(points, 2.5) is None and matched_perplexity(points, 0.5) is None


def test_distinct_ngrams():
    tokens = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 4, 6]])  # 2 four-grams per row; (1,2,3,4) twice
    assert distinct_ngrams(tokens, 4) == pytest.approx(3 / 4)
    assert distinct_ngrams(torch.zeros(3, 6, dtype=torch.long), 4) == pytest.approx(1 / 9)
    with pytest.raises(ValueError, match="4-grams"):
        distinct_ngrams(torch.zeros(2, 3, dtype=torch.long), 4)


def test_reverse_perplexity_by_hand_and_its_mode_dropping_penalty():
    samples = torch.tensor([[0, 1, 0, 1]])  # bigrams 0->1 twice, 1->0 once; V = 2, alpha = 0.1
    heldout = torch.tensor([[0, 1, 1]])  # scores 0->1 and 1->1
    q01 = (2 + 0.1) / (2 + 0.2)
    q11 = (0 + 0.1) / (1 + 0.2)
    assert reverse_perplexity(samples, heldout, 2) == pytest.approx(math.exp(-(math.log(q01) + math.log(q11)) / 2))
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 8, (400, 16), generator=g)
    collapsed = torch.randint(0, 4, (400, 16), generator=g)  # never produces half of the vocabulary
    assert reverse_perplexity(data, data, 8) < reverse_perplexity(collapsed, data, 8)
    with pytest.raises(ValueError, match="vocabulary"):
        reverse_perplexity(samples, heldout + 5, 2)
