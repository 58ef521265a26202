"""What the evidence plots mark, computed from the result alone."""

from __future__ import annotations

from memaudit.render.plots import attack_reach
from memaudit.results.scan_result import AttackedPrompt, PromptScore


def _attacked(item: str, reason: str) -> AttackedPrompt:
    return AttackedPrompt(
        item_ids=[item], reason=reason, clique_size=0, nearest_train_id=None, distance=None, extracted=False
    )


def test_the_attack_reach_is_the_lowest_score_taken_by_score_not_by_the_random_sample():
    train = [
        PromptScore(item_ids=["a", "a2"], score=0.9, flagged=True),
        PromptScore(item_ids=["b"], score=0.5, flagged=False),
        PromptScore(item_ids=["c"], score=0.4, flagged=False),
        PromptScore(item_ids=["d"], score=0.1, flagged=False),
    ]
    attacked = [
        _attacked("a", "flagged"),
        _attacked("b", "ranked"),
        _attacked("c", "ranked"),
        _attacked("d", "sampled"),
    ]
    assert attack_reach(train, attacked) == (0.4, 3)  # d came at random: below the reach, not counted
    assert attack_reach(train, [_attacked("d", "sampled")]) is None
    assert attack_reach(train, []) is None
