"""The per-prompt extraction attack and its calibrated verification, on images with known answers."""

from __future__ import annotations

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

