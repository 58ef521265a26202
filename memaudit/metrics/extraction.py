"""The extraction attack on one prompt (Carlini et al.), and its holdout-calibrated verification.

Generations of one prompt -> pairwise tiled L2 -> exact maximum clique of near-duplicates -> if the
clique is large enough, its medoid is the candidate -> the candidate counts as extracted when it is
closer to its nearest training image than the verify threshold and, when a ratio threshold is given,
specific to it: its distance to the nearest distinct training image over the distance to the second
nearest is below the ratio threshold. A copy sits on one training image (ratio near 0); a look-alike
where the training set is dense is about as close to several (ratio near 1). Both thresholds are
calibrated on holdout images (memaudit.metrics.calibration); the references must be distinct images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memaudit.metrics.cliques import maximum_clique, medoid
from memaudit.metrics.tiled_l2 import tiled_l2


@dataclass(frozen=True)
class PromptAttack:
    clique: list[int]
    clique_exact: bool  # False when the clique search hit its budget (the clique is then a lower bound)
    candidate: int | None  # index into the prompt's generations
    nearest_train: int | None  # index into the training images
    distance: float | None  # tiled L2 from the candidate to that training image
    extracted: bool
    distance_ratio: float | None = None  # nearest over second-nearest training image distance


CHUNK_BYTES = 256 * 2**20  # float64 bytes of one chunk of images compared at once


def chunk_size_for(images) -> int:
    """How many of these images fit one float64 chunk of ``CHUNK_BYTES`` (at least 1, at most 1024)."""
    per_image = 8 * int(torch.tensor(images.shape[1:]).prod())
    return max(1, min(1024, CHUNK_BYTES // max(1, per_image)))


def _smallest_tiled_l2(queries, references, *, k: int, tiles: int, chunk_size: int | None, device):
    """Per query, the ``k`` smallest tiled L2 to the references and their indices ``[Q, k]`` (exact;
    equal distances keep the lower index first). Queries and references are tensors or anything sliced
    like one (a PixelStore), read a chunk at a time so memory holds two chunks, never the data set; each
    reference chunk is read once (the references are the large side), and compared on ``device``."""
    if references.shape[0] < k:
        raise ValueError(f"`references` must hold at least {'one image' if k == 1 else f'{k} images'}")
    size = chunk_size or chunk_size_for(references)
    best = torch.full((queries.shape[0], k), float("inf"), dtype=torch.float64)
    index = torch.zeros(queries.shape[0], k, dtype=torch.long)
    for start in range(0, references.shape[0], size):
        reference = references[start : start + size].to(device)
        positions = torch.arange(start, start + reference.shape[0])
        for first in range(0, queries.shape[0], size):
            rows = slice(first, first + size)
            distances = tiled_l2(queries[rows].to(device), reference, tiles=tiles).cpu()
            merged = torch.cat([best[rows], distances], dim=1)
            order = torch.sort(merged, dim=1, stable=True)
            best[rows] = order.values[:, :k]
            candidates = torch.cat([index[rows], positions.expand_as(distances)], dim=1)
            index[rows] = torch.gather(candidates, 1, order.indices[:, :k])
    return best, index


def nearest_tiled_l2(
    queries: torch.Tensor, references: torch.Tensor, *, tiles: int = 4, chunk_size: int | None = None, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image, the smallest tiled L2 to any reference image and its index (exact, chunked)."""
    best, index = _smallest_tiled_l2(queries, references, k=1, tiles=tiles, chunk_size=chunk_size, device=device)
    return best[:, 0], index[:, 0]


def two_nearest_tiled_l2(
    queries: torch.Tensor, references: torch.Tensor, *, tiles: int = 4, chunk_size: int | None = None, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each query, (nearest distance, its reference index, second-nearest distance); exact, chunked."""
    best, index = _smallest_tiled_l2(queries, references, k=2, tiles=tiles, chunk_size=chunk_size, device=device)
    return best[:, 0], index[:, 0], best[:, 1]


def distance_ratio(nearest: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Nearest over second-nearest distance, in [0, 1]; 1 where both are 0 (no image to single out)."""
    nearest, second = nearest.double(), second.double()
    return torch.where(second > 0, nearest / second.clamp_min(1e-300), torch.ones_like(nearest))


def attack_prompt(
    generations: torch.Tensor,
    train_images: torch.Tensor,
    *,
    edge_threshold: float,
    min_clique: int,
    verify_threshold: float,
    ratio_threshold: float | None = None,
    tiles: int = 4,
    device="cpu",
) -> PromptAttack:
    """Run the clique attack on one prompt's ``[N, C, H, W]`` generations against distinct training images."""
    if min_clique < 2:
        raise ValueError(f"`min_clique` must be at least 2, got {min_clique}")
    on_device = generations.to(device)
    distances = tiled_l2(on_device, on_device, tiles=tiles).cpu()
    search = maximum_clique(distances, edge_threshold, min_size=min_clique)
    clique = search.members
    if len(clique) < min_clique:
        return PromptAttack(
            clique=clique, clique_exact=search.exact, candidate=None, nearest_train=None, distance=None, extracted=False
        )
    candidate = medoid(distances, clique)
    query = generations[candidate : candidate + 1]
    if ratio_threshold is None:
        distance, nearest = nearest_tiled_l2(query, train_images, tiles=tiles, device=device)
        ratio = None
        extracted = bool(distance[0] < verify_threshold)
    else:
        distance, nearest, second = two_nearest_tiled_l2(query, train_images, tiles=tiles, device=device)
        ratio = float(distance_ratio(distance, second)[0])
        extracted = bool(distance[0] < verify_threshold) and ratio < ratio_threshold
    return PromptAttack(
        clique=clique,
        clique_exact=search.exact,
        candidate=candidate,
        nearest_train=int(nearest[0]),
        distance=float(distance[0]),
        extracted=extracted,
        distance_ratio=ratio,
    )
