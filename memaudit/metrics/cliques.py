"""Exact maximum clique of a near-duplicate graph, and its medoid (Carlini et al.'s extraction step).

Nodes are generations; an edge joins two whose distance is at most the threshold. A memorized
image shows up as a large clique: many generations that are *all* pairwise near-identical. A chain
of near-duplicates (a-b, b-c, but a far from c) is connected but is not a clique, which is why
connected components are the wrong tool here.

The search is exact where the verdict needs it and stays fast from no copies to all copies: every
clique of at least ``min_size`` members lies in the graph's (min_size - 1)-core, so the core is
searched first, with Bron-Kerbosch and Tomita's pivot over int bitsets, pruned to cliques larger
than the best so far: one huge clique of copies is found on the first descent, where networkx's
branch and bound explodes, and a candidate set that is itself one clique (a prompt's copies) is
taken whole instead of one member per level. Only when the core holds no such clique is the rest
searched, to report the largest (small) clique. A budget on the search nodes expanded bounds the worst case; a search
that hits it says so (the clique found is then a lower bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
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


DEFAULT_BUDGET = 1_000_000  # search nodes expanded before the search stops with a lower bound


@dataclass(frozen=True)
class CliqueSearch:
    members: list[int]  # sorted node indices of the largest clique found
    exact: bool  # False when the budget ran out: ``members`` is then a lower bound on the maximum


def _core(linked: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k-core: repeatedly drop nodes with fewer than ``k`` neighbours."""
    alive = np.ones(linked.shape[0], dtype=bool)
    while True:
        degree = (linked & alive[None, :]).sum(axis=1)
        dropping = alive & (degree < k)
        if not dropping.any():
            return np.flatnonzero(alive)
        alive &= ~dropping


def _bitsets(linked: np.ndarray) -> list[int]:
    """Row i as an int whose bit j is set when i and j are linked."""
    packed = np.packbits(linked, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _search(neighbours: list[int], candidates: int, budget: int) -> tuple[int, bool]:
    """Bron-Kerbosch with Tomita's pivot over int bitsets, pruned to cliques larger than the best so far."""
    best, best_size, expanded = 0, 0, 0
    stack = [(0, 0, candidates, 0)]  # (clique, its size, candidates P, excluded X)
    while stack:
        clique, size, candidates, excluded = stack.pop()
        expanded += 1
        if expanded > budget:
            return best, False
        if not candidates:
            if size > best_size:
                best, best_size = clique, size
            continue
        count = candidates.bit_count()
        if size + count <= best_size:
            continue
        degrees = {u: (candidates & neighbours[u]).bit_count() for u in _bits(candidates | excluded)}
        if all(degrees[u] == count - 1 for u in _bits(candidates)):  # the candidates are one clique:
            best, best_size = clique | candidates, size + count  # the descent's first leaf, taken at once
            continue
        pivot = max(degrees, key=degrees.__getitem__)
        branches = []
        for v in _bits(candidates & ~neighbours[pivot]):
            branches.append((clique | (1 << v), size + 1, candidates & neighbours[v], excluded & neighbours[v]))
            candidates &= ~(1 << v)
            excluded |= 1 << v
        stack.extend(reversed(branches))  # depth first, lowest node first: deterministic
    return best, True


def _largest(linked: np.ndarray, nodes: np.ndarray, budget: int) -> CliqueSearch:
    if nodes.size == 0:
        return CliqueSearch(members=[], exact=True)
    sub = linked[np.ix_(nodes, nodes)]
    best, exact = _search(_bitsets(sub), (1 << nodes.size) - 1, budget)
    return CliqueSearch(members=sorted(int(nodes[i]) for i in _bits(best)), exact=exact)


def maximum_clique(
    distances: torch.Tensor, threshold: float, *, min_size: int = 2, budget: int = DEFAULT_BUDGET
) -> CliqueSearch:
    """The maximum clique of the near-duplicate graph; exact unless the budget ran out.

    ``min_size`` is the clique size the caller acts on: a clique that large is found or proven absent
    by searching the (min_size - 1)-core alone.
    """
    if distances.dim() != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"`distances` must be a square [N, N] matrix, got {tuple(distances.shape)}")
    if threshold < 0:
        raise ValueError(f"`threshold` must be non-negative, got {threshold}")
    if min_size < 1:
        raise ValueError(f"`min_size` must be at least 1, got {min_size}")
    if budget < 1:
        raise ValueError(f"`budget` must be at least 1, got {budget}")
    linked = (distances <= threshold).cpu().numpy()
    np.fill_diagonal(linked, False)
    linked = linked & linked.T
    if min_size > 2:
        found = _largest(linked, _core(linked, min_size - 1), budget)
        if len(found.members) >= min_size:
            return found
    return _largest(linked, np.arange(linked.shape[0]), budget)


def max_clique(distances: torch.Tensor, threshold: float) -> list[int]:
    """Sorted node indices of one maximum clique (ties: the first the search meets, which depends only
    on the distances, not on the run)."""
    return maximum_clique(distances, threshold).members


def medoid(distances: torch.Tensor, members: list[int]) -> int:
    """The member with the smallest summed distance to the other members (lowest index on ties)."""
    if not members:
        raise ValueError("`members` must not be empty")
    index = torch.tensor(members)
    totals = distances[index][:, index].double().sum(dim=1)
    return members[int(torch.argmin(totals))]
