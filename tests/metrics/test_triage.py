"""Triage formulas on closed-form inputs, and against plain re-computations of the published formulas."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.stats import entropy

from memaudit.metrics.triage import DETECTORS, channel_cosine, seed_consistency, sharpness, token_entropy


def test_channel_cosine_known_answers():
    a = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(channel_cosine(a, a), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(channel_cosine(a, -2 * a), -torch.ones(3, dtype=torch.float64))
    first, second = torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)
    first[:, 0], second[:, 1] = 1.0, 1.0  # orthogonal channels at every position
    assert channel_cosine(first, second).item() == 0.0
    assert channel_cosine(first, torch.zeros_like(first)).item() == 0.0  # a zero vector has no direction


def test_channel_cosine_is_the_papers_per_position_cosine_averaged():
    """Asthana et al.'s code: torch cosine_similarity over dim 1 ([B, C, H, W]), then the mean per sample."""
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 4, 6, 6, generator=generator), torch.randn(4, 4, 6, 6, generator=generator)
    reference = torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=1).flatten(1).mean(dim=1)
    assert torch.allclose(channel_cosine(a, b), reference, atol=1e-12)


def test_seed_consistency_known_answers():
    direction = torch.randn(1, 1, 4, 3, 3, generator=torch.Generator().manual_seed(2))
    assert seed_consistency(direction.repeat(1, 5, 1, 1, 1) * torch.arange(1, 6).view(1, 5, 1, 1, 1)).item() == (
        pytest.approx(1.0)
    )  # the same direction at any length
    opposite = torch.cat([direction, -direction], dim=1)
    assert seed_consistency(opposite).item() == pytest.approx(-1.0)
    basis = torch.eye(3).view(1, 3, 3)  # three orthogonal seeds
    assert seed_consistency(basis).item() == pytest.approx(0.0)


def test_seed_consistency_is_the_mean_over_pairs_of_seeds():
    differences = torch.randn(3, 4, 2, 5, 5, generator=torch.Generator().manual_seed(3))
    for prompt in range(3):
        pairs = [
            torch.nn.functional.cosine_similarity(
                differences[prompt, i].flatten(), differences[prompt, j].flatten(), dim=0
            )
            for i, j in itertools.combinations(range(4), 2)
        ]
        assert seed_consistency(differences)[prompt].item() == pytest.approx(torch.stack(pairs).mean().item(), abs=1e-6)


def test_seed_consistency_needs_two_seeds():
    with pytest.raises(ValueError, match="G >= 2"):
        seed_consistency(torch.randn(2, 1, 4, 4))


def test_token_entropy_known_answers_and_scipy():
    uniform = torch.full((1, 8), 1 / 8)
    assert token_entropy(uniform).item() == pytest.approx(math.log(8))
    assert token_entropy(torch.eye(4)[:1]).item() == 0.0
    p = torch.softmax(torch.randn(5, 77, generator=torch.Generator().manual_seed(4)), dim=1)
    assert torch.allclose(token_entropy(p), torch.tensor([entropy(row) for row in p.double().numpy()]), atol=1e-9)


def test_detectors_state_their_unet_passes_per_prompt_generation():
    assert DETECTORS["wen"].unet_passes(1) == 2 and DETECTORS["wen"].unet_passes(10) == 20
    assert DETECTORS["asthana"].unet_passes(1) == 4
    assert DETECTORS["consistency"].unet_passes(1) == 2 and DETECTORS["consistency"].min_generations == 2
    assert DETECTORS["attention"].unet_passes(1) == 1
    assert DETECTORS["jeon"].unet_passes(1) == 4 and DETECTORS["jeon"].first_step_only


def test_sharpness_known_answers():
    difference = torch.zeros(2, 4, 3, 3)
    difference[0, 0, 0, 0], difference[0, 1, 2, 2] = 3.0, 4.0  # norm 5
    assert sharpness(difference, 0.5).tolist() == [pytest.approx(5 / 0.25), 0.0]
    assert sharpness(difference, 1.0).dtype == torch.float64
    with pytest.raises(ValueError, match="sigma must be positive"):
        sharpness(difference, 0.0)
