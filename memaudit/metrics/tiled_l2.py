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


BATCH_BYTES = 64 * 2**20  # float64 bytes of the per-tile distances computed in one batched product
SELF_BLOCK = 64  # rows per block when a set is compared with itself (fastest of 16-128 at N = 50-500)


def tiled_l2(a: torch.Tensor, b: torch.Tensor, *, tiles: int = 4) -> torch.Tensor:
    """Pairwise tiled L2: ``[N, C, H, W]`` x ``[M, C, H, W]`` -> ``[N, M]`` float64.

    Computed in float64 as ||x||^2 + ||y||^2 - 2 x.y per tile, so near-identical pairs (the ones
    that matter) do not lose their distance to cancellation. Tiles of equal size (sides divisible by
    ``tiles``) are cut out once and compared in one batched product (a few tensor operations in all,
    which is what a prompt's 50-500 small generations need); otherwise tile by tile.
    """
    _validate(a, "a")
    _validate(b, "b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"images must share [C, H, W]; got {tuple(a.shape[1:])} and {tuple(b.shape[1:])}")
    if tiles < 1 or tiles > min(a.shape[-2:]):
        raise ValueError(f"`tiles` must be between 1 and the image side {min(a.shape[-2:])}, got {tiles}")
    if not (a.shape[0] and b.shape[0]):
        return torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    if a.shape[-2] % tiles or a.shape[-1] % tiles:
        return _tile_by_tile(a, b, tiles)
    x = _cut(a, tiles)
    y = x if b is a else _cut(b, tiles)
    x_norms = (x * x).sum(2)
    y_norms = x_norms if b is a else (y * y).sum(2)
    result = torch.empty(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    # A set against itself: each block of rows only against the columns from its own first row on
    # (half the products), mirrored, so the matrix is exactly symmetric.
    block = SELF_BLOCK if b is a else a.shape[0]
    for first in range(0, a.shape[0], block):
        rows, columns = slice(first, first + block), slice(first if b is a else 0, None)
        part = _largest_squared(x[:, rows], y[:, columns], x_norms=x_norms[:, rows], y_norms=y_norms[:, columns])
        result[rows, columns] = part
        if b is a:
            result[columns, rows] = part.T
    return (result.clamp_min(0.0) / x.shape[2]).sqrt()


def _largest_squared(x, y, *, x_norms, y_norms) -> torch.Tensor:
    """Per pair, the largest squared distance over the tiles, a few tiles per batched product."""
    group = max(1, BATCH_BYTES // max(1, 8 * x.shape[1] * y.shape[1]))
    largest = None
    for first in range(0, x.shape[0], group):
        tiles = slice(first, first + group)
        squared = torch.baddbmm(x_norms[tiles, :, None] + y_norms[tiles, None, :], x[tiles], y[tiles].mT, alpha=-2.0)
        largest = squared.amax(dim=0) if largest is None else torch.maximum(largest, squared.amax(dim=0))
    return largest


def _cut(images: torch.Tensor, tiles: int) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[tiles^2, N, C * H/tiles * W/tiles]`` float64, one copy."""
    n, c, h, w = images.shape
    grid = images.reshape(n, c, tiles, h // tiles, tiles, w // tiles).permute(2, 4, 0, 1, 3, 5)
    out = torch.empty(grid.shape, dtype=torch.float64, device=images.device)
    out.copy_(grid)
    return out.reshape(tiles * tiles, n, -1)


def _tile_by_tile(a: torch.Tensor, b: torch.Tensor, tiles: int) -> torch.Tensor:
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
