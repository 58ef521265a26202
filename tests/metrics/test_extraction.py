"""The per-prompt extraction attack and its calibrated verification, on images with known answers."""

from __future__ import annotations

import pytest
import torch

from memaudit.metrics.extraction import attack_prompt, nearest_tiled_l2
from memaudit.metrics.tiled_l2 import tiled_l2


def _images(count: int, seed: int, side: int = 16) -> torch.Tensor:
    return torch.rand(count, 1, side, side, generator=torch.Generator().manual_seed(seed))


def test_nearest_tiled_l2_is_exact_across_chunks():
    queries, references = _images(7, 0), _images(23, 1)
    full = tiled_l2(queries, references)
    for chunk in (1, 5, 100):
        distance, index = nearest_tiled_l2(queries, references, chunk_size=chunk)
        assert torch.equal(index, full.argmin(dim=1))
        assert torch.allclose(distance, full.min(dim=1).values)


def test_memorized_prompt_is_extracted_and_attributed():
    train = _images(10, 2)
    generator = torch.Generator().manual_seed(3)
    copies = (train[6] + 0.01 * torch.randn(12, 1, 16, 16, generator=generator)).clamp(0, 1)
    generations = torch.cat([copies, _images(8, 4)])  # 12 near-copies of training image 6 among 20
    attack = attack_prompt(generations, train, edge_threshold=0.1, min_clique=5, verify_threshold=0.05)
    assert attack.clique == list(range(12))
    assert attack.extracted and attack.nearest_train == 6 and attack.distance < 0.05
    assert attack.candidate in attack.clique


def test_consistent_but_novel_generations_are_not_extracted():
    train = _images(10, 5)
    novel = _images(1, 6)[0]
    generations = (novel + 0.01 * torch.randn(12, 1, 16, 16, generator=torch.Generator().manual_seed(7))).clamp(0, 1)
    attack = attack_prompt(generations, train, edge_threshold=0.1, min_clique=5, verify_threshold=0.05)
    assert len(attack.clique) == 12 and attack.candidate is not None
    assert not attack.extracted and attack.distance > 0.05


def test_small_clique_yields_no_candidate():
    attack = attack_prompt(_images(10, 8), _images(3, 9), edge_threshold=0.1, min_clique=3, verify_threshold=0.5)
    assert attack.candidate is None and not attack.extracted



def test_two_nearest_agree_with_a_full_sort_across_chunks():
    from memaudit.metrics.extraction import two_nearest_tiled_l2
    from memaudit.metrics.tiled_l2 import tiled_l2

    generator = torch.Generator().manual_seed(5)
    queries, references = torch.rand(6, 1, 8, 8, generator=generator), torch.rand(300, 1, 8, 8, generator=generator)
    nearest, index, second = two_nearest_tiled_l2(queries, references, chunk_size=64)
    ordered = tiled_l2(queries, references).sort(dim=1)
    assert torch.allclose(nearest, ordered.values[:, 0]) and torch.allclose(second, ordered.values[:, 1])
    assert torch.equal(index, ordered.indices[:, 0])


def test_distance_ratio_singles_out_a_copy_and_not_a_look_alike():
    from memaudit.metrics.extraction import distance_ratio

    ratios = distance_ratio(torch.tensor([0.0, 0.04, 0.0]), torch.tensor([0.3, 0.045, 0.0]))
    assert ratios.tolist() == pytest.approx([0.0, 0.04 / 0.045, 1.0])  # copy, look-alike, nothing to single out


def test_a_look_alike_in_a_dense_region_is_close_but_not_specific():
    """Two training images 0.02 apart: a generation between them is near both (ratio ~1), a copy of one is not."""
    train = torch.zeros(3, 1, 8, 8)
    train[1] = 0.04
    train[2] = 0.9
    look_alike = torch.full((16, 1, 8, 8), 0.02)
    copy = train[2:3].expand(16, -1, -1, -1).clone()
    common = dict(edge_threshold=0.05, min_clique=3, verify_threshold=0.1, ratio_threshold=0.5)
    near = attack_prompt(look_alike, train, **common)
    assert near.distance == pytest.approx(0.02) and near.distance_ratio == pytest.approx(1.0)
    assert not near.extracted
    assert attack_prompt(look_alike, train, **(common | {"ratio_threshold": None})).extracted  # distance alone: yes
    copied = attack_prompt(copy, train, **common)
    assert copied.extracted and copied.nearest_train == 2 and copied.distance_ratio == pytest.approx(0.0)


def test_chunk_size_keeps_a_chunk_of_float64_images_within_its_budget():
    from memaudit.metrics.extraction import CHUNK_BYTES, chunk_size_for

    assert chunk_size_for(torch.empty(0, 3, 512, 512)) == CHUNK_BYTES // (8 * 3 * 512 * 512)  # 42 at 512 px
    assert chunk_size_for(torch.empty(0, 3, 32, 32)) == 1024  # capped
    assert chunk_size_for(torch.empty(0, 3, 8192, 8192)) == 1  # never zero
