"""Maximum clique: brute force agreement, the chain that is connected but not a clique, the medoid."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch

from memaudit.metrics.cliques import max_clique, medoid, near_duplicate_graph


def _brute_force_size(linked: torch.Tensor) -> int:
    n = linked.shape[0]
    for size in range(n, 0, -1):
        for subset in itertools.combinations(range(n), size):
            if all(linked[i, j] for i, j in itertools.combinations(subset, 2)):
                return size
    return 0


@pytest.mark.parametrize("seed", range(25))
def test_agrees_with_brute_force_on_random_graphs(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 4 + seed % 7
    upper = torch.rand(n, n, generator=generator).triu(1)
    distances = upper + upper.T
    threshold = 0.2 + 0.6 * (seed % 5) / 4
    clique = max_clique(distances, threshold)
    linked = distances <= threshold
    assert len(clique) == _brute_force_size(linked)
    assert all(linked[i, j] for i, j in itertools.combinations(clique, 2))


def test_chain_of_near_duplicates_is_connected_but_not_a_clique():
    # 0-1-2-3-4: neighbours are 0.08 apart, everything further is above the 0.1 threshold
    positions = torch.arange(5, dtype=torch.float64) * 0.08
    distances = (positions[:, None] - positions[None, :]).abs()
    graph = near_duplicate_graph(distances, 0.1)
    assert max(len(c) for c in nx.connected_components(graph)) == 5
    assert len(max_clique(distances, 0.1)) == 2


def test_planted_clique_is_found_exactly():
    generator = torch.Generator().manual_seed(0)
    distances = 0.5 + 0.5 * torch.rand(30, 30, generator=generator)
    distances = (distances + distances.T) / 2
    planted = [3, 7, 11, 19, 25, 28]
    for i in planted:
        for j in planted:
            distances[i, j] = 0.05
    distances.fill_diagonal_(0)
    assert max_clique(distances, 0.1) == planted


def test_medoid_is_the_most_central_member():
    points = torch.tensor([0.0, 1.0, 2.0, 10.0])
    distances = (points[:, None] - points[None, :]).abs()
    assert medoid(distances, [0, 1, 2]) == 1
    assert medoid(distances, [0, 1, 2, 3]) == 1  # sums: 13, 11, 11, 37 -> the tie goes to the lower index
    with pytest.raises(ValueError):
        medoid(distances, [])


def test_empty_and_bad_input():
    assert max_clique(torch.zeros(0, 0), 0.1) == []
    with pytest.raises(ValueError, match="square"):
        max_clique(torch.zeros(2, 3), 0.1)
