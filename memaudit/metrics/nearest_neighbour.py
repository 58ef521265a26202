"""Nearest-neighbour cosine distances, AMD and the holdout-calibrated near-copy rate.

Cosine distance is ``1 - cos(a, b)`` on L2-normalised features. The search is exact and chunked:
memory is bounded by ``chunk_size`` x M, and the reference (training) side is never subsampled,
because a subsample biases every minimum distance upward and the verdict towards "safe".
"""

from __future__ import annotations

import torch


def _check_features(features: torch.Tensor, name: str) -> None:
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"`{name}` must have shape [N, D] with N >= 1, got {tuple(features.shape)}")


def min_cosine_distance(
    queries: torch.Tensor, references: torch.Tensor, *, chunk_size: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query, the smallest cosine distance to any reference and that reference's index.

    ``[N, D]`` x ``[M, D]`` -> (``[N]`` float64 distances, ``[N]`` long indices).
    """
    _check_features(queries, "queries")
    _check_features(references, "references")
    if queries.shape[1] != references.shape[1]:
        raise ValueError(f"feature sizes differ: {queries.shape[1]} vs {references.shape[1]}")
    if chunk_size < 1:
        raise ValueError(f"`chunk_size` must be at least 1, got {chunk_size}")
    normalised_refs = torch.nn.functional.normalize(references.double(), dim=1)
    distances, indices = [], []
    for start in range(0, queries.shape[0], chunk_size):
        chunk = torch.nn.functional.normalize(queries[start : start + chunk_size].double(), dim=1)
        similarity, index = (chunk @ normalised_refs.T).max(dim=1)
        distances.append((1.0 - similarity).clamp_min(0.0))
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


def average_min_distance(min_distances: torch.Tensor) -> float:
    """AMD: the mean of the per-sample minimum distances to the training set. Higher is better."""
    if min_distances.numel() == 0:
        raise ValueError("AMD needs at least one generated sample")
    return float(min_distances.double().mean())



def near_copy_rate(min_distances: torch.Tensor, tau: float) -> float:
    """Fraction of generated samples strictly closer to a training image than ``tau``. Lower is better."""
    if min_distances.numel() == 0:
        raise ValueError("near-copy rate needs at least one generated sample")
    return float((min_distances < tau).double().mean())
