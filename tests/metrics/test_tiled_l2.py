"""Tiled L2: known answers and agreement with a direct numpy computation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from memaudit.metrics.tiled_l2 import tiled_l2


def _direct(a: np.ndarray, b: np.ndarray, tiles: int) -> float:
    """One pair, the definition written out: max over tiles of sqrt(mean squared difference)."""
    height, width = a.shape[-2:]
    rows = np.round(np.linspace(0, height, tiles + 1)).astype(int)
    cols = np.round(np.linspace(0, width, tiles + 1)).astype(int)
    worst = 0.0
    for r0, r1 in itertools.pairwise(rows):
        for c0, c1 in itertools.pairwise(cols):
            diff = a[:, r0:r1, c0:c1].astype(np.float64) - b[:, r0:r1, c0:c1]
            worst = max(worst, float(np.sqrt(np.mean(diff**2))))
    return worst


@pytest.mark.parametrize(("shape", "tiles"), [((3, 16, 16), 4), ((1, 18, 13), 4), ((3, 8, 8), 1), ((1, 10, 10), 3)])
def test_matches_the_direct_definition(shape, tiles):
    generator = torch.Generator().manual_seed(1)
    a = torch.rand(5, *shape, generator=generator)
    b = torch.rand(4, *shape, generator=generator)
    b[0] = a[2] + 0.01 * torch.rand(shape, generator=generator)  # a near-duplicate pair
    result = tiled_l2(a, b, tiles=tiles)
    expected = np.array([[_direct(x.numpy(), y.numpy(), tiles) for y in b] for x in a])
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_known_answers():
    a = torch.zeros(1, 1, 8, 8)
    assert tiled_l2(a, a).item() == 0.0
    b = a.clone()
    b[..., :2, :2] = 0.5  # exactly one of the 16 tiles differs, by 0.5 everywhere
    assert tiled_l2(a, b).item() == pytest.approx(0.5)
    c = a.clone()
    c[..., 0, 0] = 1.0  # one pixel of a 2x2 tile: sqrt(1/4)
    assert tiled_l2(a, c).item() == pytest.approx(0.5)
    assert tiled_l2(a, c, tiles=1).item() == pytest.approx(1 / 8)  # sqrt(1/64) over the whole image


def test_one_differing_region_is_enough_to_separate():
    a = torch.full((1, 1, 16, 16), 0.5)
    b = a.clone()
    b[..., 12:, 12:] = 1.0
    assert tiled_l2(a, b).item() == pytest.approx(0.5)
    # a plain L2 over the whole image would call them close
    assert torch.sqrt(((a - b) ** 2).mean()).item() < 0.13


def test_validation_messages():
    with pytest.raises(ValueError, match=r"must have shape \[N, C, H, W\]"):
        tiled_l2(torch.zeros(1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="must share"):
        tiled_l2(torch.zeros(1, 1, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="`tiles` must be between"):
        tiled_l2(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), tiles=4)


# one tile per product or all in one; a self-comparison in blocks of 4 rows (uneven: 6 images) or whole
@pytest.mark.parametrize(("batch_bytes", "self_block"), [(1, 4), (10**9, 4), (10**9, 128)])
def test_self_comparison_and_tile_grouping_match_the_definition(monkeypatch, batch_bytes, self_block):
    import memaudit.metrics.tiled_l2 as module

    monkeypatch.setattr(module, "BATCH_BYTES", batch_bytes)
    monkeypatch.setattr(module, "SELF_BLOCK", self_block)
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(6, 3, 12, 12, generator=generator)
    images[3] = images[1] + 0.001 * torch.rand(3, 12, 12, generator=generator)
    expected = np.array([[_direct(x.numpy(), y.numpy(), 4) for y in images] for x in images])
    itself = tiled_l2(images, images)
    np.testing.assert_allclose(itself.numpy(), expected, rtol=1e-9, atol=1e-7)
    assert torch.equal(itself, itself.T)
    np.testing.assert_allclose(tiled_l2(images, images.clone()).numpy(), expected, rtol=1e-9, atol=1e-7)


def test_an_empty_side_gives_an_empty_matrix():
    images = torch.rand(3, 1, 8, 8)
    assert tiled_l2(images[:0], images).shape == (0, 3) and tiled_l2(images, images[:0]).shape == (3, 0)
    assert tiled_l2(images[:0], images[:0]).dtype == torch.float64
