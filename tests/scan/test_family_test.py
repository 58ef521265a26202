"""The family test over all candidates of a scan: Benjamini-Hochberg on tail p-values and the count
test, each at half the policy's level (scan/extraction_thresholds.py)."""

from __future__ import annotations

import torch

from memaudit.metrics.tail import benjamini_hochberg, fit_lower_tail
from memaudit.results.scan_result import AttackedPrompt, CalibrationRecord
from memaudit.scan.calibration import Calibrated
from memaudit.scan.extraction_thresholds import Thresholds

FAMILY = 0.03  # the hospital policy's family level


def _thresholds(holdout: torch.Tensor, *, family: float | None = FAMILY) -> Thresholds:
    """A verify threshold at the smallest holdout distance (a 100-image holdout cannot bound 1%)."""
    record = CalibrationRecord(
        tail="lower", n=len(holdout), k=1, false_alarm=0.01, confidence=0.95, bound=0.03, sufficient=False
    )
    verify = Calibrated(threshold=float(holdout.min()), record=record, warnings=[])
    tail = fit_lower_tail(holdout, confidence=0.95) if family else None
    return Thresholds(verify=verify, ratio=None, tail=tail, family_false_alarm=family)


def _candidate(index: int, distance: float, threshold: float) -> AttackedPrompt:
    return AttackedPrompt(
        item_ids=[f"prompt-{index}"],
        reason="ranked",
        clique_size=5,
        nearest_train_id=f"train-{index}",
        distance=distance,
        extracted=distance < threshold,
    )


def _bench_case(below: int) -> tuple[Thresholds, list[AttackedPrompt]]:
    """The full + threshold row of the ground-truth bench: 100 holdout distances, 36 attacked prompts of
    which ``below`` give blurred copies a little closer than every holdout distance."""
    generator = torch.Generator().manual_seed(0)
    holdout = 0.053 + 0.05 * torch.rand(100, generator=generator, dtype=torch.float64)
    thresholds = _thresholds(holdout)
    close = [0.050 - 0.001 * k for k in range(below)]
    distances = close + [0.09] * (36 - below)
    return thresholds, [_candidate(i, d, thresholds.verify.threshold) for i, d in enumerate(distances)]


def test_seven_blurred_copies_below_a_small_holdout_are_found_by_the_count_test():
    thresholds, candidates = _bench_case(7)
    p_values = [thresholds.tail.p_value(a.distance) for a in candidates]
    assert min(p_values) >= 1 / 101 - 1e-12  # the tail's extrapolation does not go below the floor here
    assert not any(benjamini_hochberg(p_values, FAMILY))  # so Benjamini-Hochberg alone selects none
    judged = thresholds.judge(candidates)
    count = thresholds.count_test(candidates)
    assert (count.rank, count.holdout, count.candidates, count.below) == (1, 100, 36, 7)
    assert count.copies_at_least == 5 and count.level == FAMILY / 2  # worked in tests/metrics/test_copy_count.py
    # The five closest (distances 0.046-0.044) are marked, each with its tail p-value.
    assert [a.extracted for a in judged] == [False] * 2 + [True] * 5 + [False] * 29
    assert [a.p_value for a in judged] == p_values


def test_one_candidate_below_the_holdout_is_no_evidence_of_copying():
    thresholds, candidates = _bench_case(1)
    assert thresholds.count_test(candidates).copies_at_least == 0
    assert not any(a.extracted for a in thresholds.judge(candidates))


def test_a_byte_copy_is_found_by_benjamini_hochberg_alone():
    thresholds, candidates = _bench_case(0)
    copy = candidates[3].model_copy(update={"distance": 0.0, "extracted": True})
    candidates = [*candidates[:3], copy, *candidates[4:]]
    judged = thresholds.judge(candidates)
    assert thresholds.count_test(candidates).copies_at_least == 0  # one of 36 below proves nothing by count
    assert [i for i, a in enumerate(judged) if a.extracted] == [3] and judged[3].p_value == 0.0


def test_without_a_family_level_candidates_are_judged_alone():
    thresholds, candidates = _bench_case(7)
    alone = _thresholds(torch.tensor([0.06, 0.07, 0.08], dtype=torch.float64), family=None)
    assert alone.judge(candidates) == candidates and alone.count_test(candidates) is None
    assert thresholds.count_test([]) is None


def test_without_the_count_test_benjamini_hochberg_has_the_whole_level():
    """Perturbations of one prompt are not independent candidates: there the count test is off."""
    thresholds, candidates = _bench_case(7)
    assert not any(a.extracted for a in thresholds.judge(candidates, count=False))
    tail = thresholds.tail
    between = tail.anchor * (0.0006 / tail.anchor_bound) ** (1 / tail.dimension_low)  # p = 0.0006
    assert FAMILY / 2 / 36 < tail.p_value(between) < FAMILY / 36
    _, others = _bench_case(0)
    candidates = [_candidate(0, between, thresholds.verify.threshold), *others[1:]]
    assert [a.extracted for a in thresholds.judge(candidates, count=False)][:2] == [True, False]
    assert not any(a.extracted for a in thresholds.judge(candidates))  # BH at half the level
