"""AMD and near-copy rate on hand-made features; chunking never changes the answer."""

from __future__ import annotations

import math

import pytest
import torch

from memaudit.metrics.nearest_neighbour import (
    average_min_distance,
    min_cosine_distance,
    near_copy_rate,
)


def _unit(angle_degrees: float) -> list[float]:
    radians = math.radians(angle_degrees)
    return [math.cos(radians), math.sin(radians)]


def test_min_cosine_distance_known_answer():
    train = torch.tensor([_unit(0), _unit(90)], dtype=torch.float64)
    generated = torch.tensor([_unit(0), [2.0, 0.0], _unit(60), _unit(180)], dtype=torch.float64)
    distances, indices = min_cosine_distance(generated, train)
    expected = [0.0, 0.0, 1 - math.cos(math.radians(30)), 1.0]
    assert distances.tolist() == pytest.approx(expected, abs=1e-12)
    assert indices.tolist()[:3] == [0, 0, 1]
    assert average_min_distance(distances) == pytest.approx(sum(expected) / 4)


def test_chunking_gives_identical_results():
    generator = torch.Generator().manual_seed(0)
    queries, references = torch.randn(103, 16, generator=generator), torch.randn(57, 16, generator=generator)
    whole = min_cosine_distance(queries, references, chunk_size=10_000)
    for chunk in (1, 7, 50):
        part = min_cosine_distance(queries, references, chunk_size=chunk)
        assert torch.equal(part[1], whole[1])
        assert torch.allclose(part[0], whole[0], atol=1e-15)


def test_matches_the_full_distance_matrix():
    generator = torch.Generator().manual_seed(2)
    queries, references = torch.randn(20, 8, generator=generator), torch.randn(30, 8, generator=generator)
    full = 1 - torch.nn.functional.cosine_similarity(queries[:, None].double(), references[None].double(), dim=-1)
    distances, _ = min_cosine_distance(queries, references, chunk_size=3)
    assert torch.allclose(distances, full.min(dim=1).values, atol=1e-12)


def test_near_copy_rate_counts_samples_strictly_below_tau():
    generated_min = torch.tensor([0.0, 0.19, 0.20, 0.9])
    assert near_copy_rate(generated_min, 0.20) == 0.5


def test_validation():
    with pytest.raises(ValueError, match="feature sizes differ"):
        min_cosine_distance(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="at least one"):
        near_copy_rate(torch.zeros(0), 0.1)


def test_one_calibration_definition_matches_numpy():
    import numpy as np

    from memaudit.metrics.calibration import holdout_quantile

    values = torch.rand(37, generator=torch.Generator().manual_seed(3))
    for quantile in (0.01, 0.05, 0.5, 0.99):
        assert holdout_quantile(values, quantile) == pytest.approx(
            float(np.quantile(values.double().numpy(), quantile))
        )
