"""Known answers for the re-identification score: nearest candidates, the head's best pair, 1 - P."""

from __future__ import annotations

import math

import pytest
import torch

from memaudit.metrics.reidentification import resemblance


def _minus_distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """A head whose logit is minus the Euclidean distance: the closest pair is the most likely match."""
    return -(first - second).norm(dim=1)


def test_each_image_takes_its_best_pair_among_its_nearest():
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    images = torch.tensor([[9.0, 0.0], [0.0, 0.5], [0.0, 7.0]])
    found = resemblance(images, train, _minus_distance, top_k=2)
    assert found.train_rows.tolist() == [1, 0, 2]
    expected = [1 / (1 + math.exp(d)) for d in (1.0, 0.5, 3.0)]  # sigmoid(logit) = P(same), logit = -d
    assert torch.allclose(found.distances, 1 - torch.tensor(expected, dtype=torch.float64))


def test_only_the_nearest_k_are_scored():
    """A head that prefers far pairs still only sees the k nearest: with k = 1 the nearest image wins."""
    train = torch.tensor([[0.0], [1.0], [5.0]])
    far_is_likely = lambda first, second: (first - second).norm(dim=1)  # noqa: E731
    assert resemblance(torch.tensor([[0.2]]), train, far_is_likely, top_k=1).train_rows.tolist() == [0]
    assert resemblance(torch.tensor([[0.2]]), train, far_is_likely, top_k=3).train_rows.tolist() == [2]
    images = torch.rand(7, 1, generator=torch.Generator().manual_seed(0)) * 5
    chunked = resemblance(images, train, far_is_likely, top_k=2, chunk_size=3)
    whole = resemblance(images, train, far_is_likely, top_k=2)
    assert torch.equal(chunked.distances, whole.distances) and torch.equal(chunked.train_rows, whole.train_rows)


def test_a_certain_match_is_distance_zero_without_cancellation():
    certain = lambda first, second: torch.full((len(first),), 60.0)  # noqa: E731
    found = resemblance(torch.zeros(1, 2), torch.zeros(3, 2), certain, top_k=2)
    assert 0.0 < float(found.distances[0]) < 1e-25  # 1 - sigmoid(60) computed as sigmoid(-60)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="top_k"):
        resemblance(torch.zeros(1, 2), torch.zeros(1, 2), _minus_distance, top_k=0)
    with pytest.raises(ValueError, match="no training images"):
        resemblance(torch.zeros(1, 2), torch.zeros(0, 2), _minus_distance, top_k=1)
