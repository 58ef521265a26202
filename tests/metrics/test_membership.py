"""PIA's formulas on closed-form inputs."""

from __future__ import annotations

import math

import pytest
import torch

from memaudit.metrics.membership import pia_scores


def test_pia_scores_are_minus_the_lp_distance():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.zeros(2, 1, 2, 2)
    b[1] = 1.0  # four entries of 1: L4 distance 4^(1/4), L2 distance 2
    assert pia_scores(a, b, p=4).tolist() == pytest.approx([0.0, -math.sqrt(2)])
    assert pia_scores(a, b, p=2).tolist() == pytest.approx([0.0, -2.0])
    assert torch.equal(pia_scores(b, b, p=4), torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pia_scores(torch.zeros(2, 3), torch.zeros(2, 4), p=4), "share a"),
        (lambda: pia_scores(torch.zeros(2, 3), torch.zeros(2, 3), p=0.5), "at least 1"),
    ],
)
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
