"""Exact maximum clique of a near-duplicate graph, and its medoid (Carlini et al.'s extraction step).

Nodes are generations; an edge joins two whose distance is at most the threshold. A memorized
image shows up as a large clique: many generations that are *all* pairwise near-identical. A chain
of near-duplicates (a-b, b-c, but a far from c) is connected but is not a clique, which is why
connected components are the wrong tool here.
"""

from __future__ import annotations

import networkx as nx
import torch


def near_duplicate_graph(distances: torch.Tensor, threshold: float) -> nx.Graph:
    """Graph over ``range(N)`` with an edge wherever ``distances[i, j] <= threshold`` (i != j)."""
    if distances.dim() != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"`distances` must be a square [N, N] matrix, got {tuple(distances.shape)}")
    if threshold < 0:
        raise ValueError(f"`threshold` must be non-negative, got {threshold}")
    graph = nx.Graph()
    graph.add_nodes_from(range(distances.shape[0]))
    linked = torch.triu(distances <= threshold, diagonal=1).nonzero().tolist()
    graph.add_edges_from((int(i), int(j)) for i, j in linked)
    return graph


def max_clique(distances: torch.Tensor, threshold: float) -> list[int]:
    """Sorted node indices of one maximum clique (exact; ties broken by networkx's node order)."""
    graph = near_duplicate_graph(distances, threshold)
    if graph.number_of_nodes() == 0:
        return []
    clique, _ = nx.max_weight_clique(graph, weight=None)
    return sorted(clique)


def medoid(distances: torch.Tensor, members: list[int]) -> int:
    """The member with the smallest summed distance to the other members (lowest index on ties)."""
    if not members:
        raise ValueError("`members` must not be empty")
    index = torch.tensor(members)
    totals = distances[index][:, index].double().sum(dim=1)
    return members[int(torch.argmin(totals))]
