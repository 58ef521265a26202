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


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("min_size", [2, 3, 4])
def test_core_pruned_search_agrees_with_brute_force_and_networkx(seed, min_size):
    from memaudit.metrics.cliques import maximum_clique

    generator = torch.Generator().manual_seed(100 + seed)
    n = 5 + seed % 6
    upper = torch.rand(n, n, generator=generator).triu(1)
    distances = upper + upper.T
    threshold = 0.3 + 0.5 * (seed % 4) / 3
    search = maximum_clique(distances, threshold, min_size=min_size)
    linked = distances <= threshold
    assert search.exact and len(search.members) == _brute_force_size(linked)
    assert all(linked[i, j] for i, j in itertools.combinations(search.members, 2))
    reference, _ = nx.max_weight_clique(near_duplicate_graph(distances, threshold), weight=None)
    assert len(search.members) == len(reference)


def _copies(count: int, fraction: float, seed: int = 0) -> torch.Tensor:
    """Distances of ``count`` generations, a ``fraction`` of them near-identical copies of one image."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.rand(count, 8, generator=generator, dtype=torch.float64) * 4
    copies = int(count * fraction)
    points[:copies] = points[0] + 0.001 * torch.randn(copies, 8, generator=generator, dtype=torch.float64)
    return torch.cdist(points, points)


@pytest.mark.parametrize("fraction", [0.0, 0.4, 0.9])
def test_a_clique_of_copies_is_found_whole_however_large(fraction):
    from memaudit.metrics.cliques import maximum_clique

    search = maximum_clique(_copies(300, fraction), 0.1, min_size=3)
    assert search.exact
    expected = int(300 * fraction)
    assert search.members == (list(range(expected)) if expected >= 2 else search.members)
    assert expected >= 2 or len(search.members) < 3


def test_a_search_that_runs_out_of_budget_says_so():
    from memaudit.metrics.cliques import maximum_clique

    # The complete 6-partite graph K(3,3,3,3,3,3) has 3**6 = 729 maximal cliques, each of 6 nodes.
    parts = torch.arange(18) % 6
    distances = (parts[:, None] == parts[None, :]).double()  # linked (0) across parts, 1 within
    search = maximum_clique(distances, 0.5, min_size=2, budget=10)
    assert not search.exact and len(search.members) == 6
    assert maximum_clique(distances, 0.5, min_size=2).exact


def test_the_bound_below_min_size_is_still_the_exact_maximum():
    from memaudit.metrics.cliques import maximum_clique

    assert maximum_clique(_copies(50, 0.04), 0.1, min_size=10).members == [0, 1]
