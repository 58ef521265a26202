"""Tiled L2 distance between images (Carlini et al., USENIX Security 2023). Lower means more alike.

Split both images into a ``tiles`` x ``tiles`` grid; per tile take the normalised L2 distance
``sqrt(mean((a - b)^2))`` over the tile's pixels and channels; the distance is the largest over the
tiles. A copy must match everywhere, so one differing region is enough to keep two images apart.
Values lie in [0, 1] for images in [0, 1], whatever the resolution.
"""

from __future__ import annotations

import itertools

import torch


def _validate(images: torch.Tensor, name: str) -> None:
    if images.dim() != 4:
        raise ValueError(f"`{name}` must have shape [N, C, H, W], got {tuple(images.shape)}")


def _tile_slices(size: int, tiles: int) -> list[slice]:
    bounds = torch.linspace(0, size, tiles + 1).round().long().tolist()
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def tiled_l2(a: torch.Tensor, b: torch.Tensor, *, tiles: int = 4) -> torch.Tensor:
    """Pairwise tiled L2: ``[N, C, H, W]`` x ``[M, C, H, W]`` -> ``[N, M]`` float64.

    Computed in float64 as ||x||^2 + ||y||^2 - 2 x.y per tile, so near-identical pairs (the ones
    that matter) do not lose their distance to cancellation.
    """
    _validate(a, "a")
    _validate(b, "b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"images must share [C, H, W]; got {tuple(a.shape[1:])} and {tuple(b.shape[1:])}")
    if tiles < 1 or tiles > min(a.shape[-2:]):
        raise ValueError(f"`tiles` must be between 1 and the image side {min(a.shape[-2:])}, got {tiles}")
    a64, b64 = a.double(), b.double()
    result = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    for rows in _tile_slices(a.shape[-2], tiles):
        for cols in _tile_slices(a.shape[-1], tiles):
            x = a64[:, :, rows, cols].flatten(1)
            y = b64[:, :, rows, cols].flatten(1)
            squared = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
            distance = (squared.clamp_min(0.0) / x.shape[1]).sqrt()
            result = torch.maximum(result, distance)
    return result
