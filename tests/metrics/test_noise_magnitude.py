"""Noise magnitude: the per-step norm and the holdout-calibrated flag."""

from __future__ import annotations

import pytest
import torch

from memaudit.metrics.noise_magnitude import flagged, step_magnitude


def test_step_magnitude_is_the_l2_norm_over_the_whole_latent():
    cond = torch.zeros(2, 4, 2, 2)
    uncond = torch.zeros(2, 4, 2, 2)
    cond[0, 0, 0, 0] = 3.0
    cond[0, 1, 1, 1] = 4.0
    cond[1] = 0.5  # 16 entries of 0.5 -> sqrt(16 * 0.25) = 2
    assert step_magnitude(cond, uncond).tolist() == [5.0, 2.0]


def test_flags_are_strictly_above_the_threshold():
    assert flagged(torch.tensor([98.0, 99.0, 99.5]), 99.0).tolist() == [False, False, True]


def test_validation():
    with pytest.raises(ValueError, match="share a"):
        step_magnitude(torch.zeros(2, 3), torch.zeros(2, 4))
