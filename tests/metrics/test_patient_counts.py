"""The patient count test: exact hypergeometric tails, checked by hand, by enumeration and against scipy."""

from __future__ import annotations

import itertools
import random

import pytest

from memaudit.metrics.patient_counts import draw_tail, named_by_count, patient_counts, tarone_filter
from memaudit.metrics.tail import benjamini_hochberg


def test_known_answers():
    # 2 drawn of 3 scored + 3 holdout: both scored with probability C(3,2)/C(6,2) = 3/15
    assert draw_tail(2, scored_draws=2, scored=3, holdout=3) == pytest.approx(3 / 15)
    assert draw_tail(2, scored_draws=0, scored=3, holdout=3) == 1.0
    # every one of m scored images drawn by one patient that no holdout image drew: 1 / C(n + m, m)
    assert draw_tail(4, scored_draws=4, scored=4, holdout=300) == pytest.approx(1 / 348_881_876, rel=1e-9)


def test_the_tail_is_the_share_of_equally_likely_splits():
    scored, holdout = 4, 5
    for drawn in range(scored + holdout + 1):
        splits = list(itertools.combinations(range(scored + holdout), drawn))
        for least in range(min(drawn, scored) + 1):
            share = sum(sum(1 for i in split if i < scored) >= least for split in splits) / len(splits)
            assert draw_tail(drawn, scored_draws=least, scored=scored, holdout=holdout) == pytest.approx(share)


def test_it_equals_scipys_hypergeometric_survival_function():
    hypergeom = pytest.importorskip("scipy.stats").hypergeom
    for drawn, least, scored, holdout in [(12, 10, 80, 300), (3, 1, 40, 120), (30, 5, 200, 1000)]:
        expected = hypergeom.sf(least - 1, scored + holdout, drawn, scored)
        assert draw_tail(drawn, scored_draws=least, scored=scored, holdout=holdout) == pytest.approx(expected, rel=1e-9)


def test_patient_counts_per_patient_drawn():
    counts = patient_counts(["b", "a", "b", "b"], ["a", "c", "a", "c", "c", "b"])
    assert [(c.patient, c.scored, c.holdout) for c in counts] == [("a", 1, 2), ("b", 3, 1), ("c", 0, 3)]
    assert counts[1].p_value == pytest.approx(draw_tail(4, scored_draws=3, scored=4, holdout=6))
    assert counts[2].p_value == 1.0  # drawn by holdout images only
    # the least reachable p-value: all of a patient's draws among the 4 scored (c: 3 of its 3)
    assert counts[0].least_p_value == pytest.approx(draw_tail(3, scored_draws=3, scored=4, holdout=6))
    assert counts[2].least_p_value == pytest.approx(4 * 3 * 2 / (10 * 9 * 8))


def test_tarones_filter_keeps_the_tests_that_can_reach_alpha_over_their_number():
    # K = 1: two tests reach 0.01 (too many); K = 2: the same two reach 0.005 -> those two
    assert tarone_filter([0.001, 0.002, 0.3, 0.5], 0.01) == [True, True, False, False]
    # K = 1 already holds: only the first can reach 0.01
    assert tarone_filter([0.001, 0.02, 0.3], 0.01) == [True, False, False]
    # K = 1: all three reach 0.01 (too many); K = 2: two reach 0.005 -> those two
    assert tarone_filter([0.004, 0.005, 0.006], 0.01) == [True, True, False]
    # K = 1: none can reach 0.01 -> nothing is testable
    assert tarone_filter([0.02, 0.03], 0.01) == [False, False]
    assert tarone_filter([], 0.01) == []


def test_patients_drawn_once_no_longer_hide_one_drawn_again_and_again():
    """8 of 200 scored images and 1 of 300 holdout images show patient a; every other image shows a patient
    of its own. Over all 492 patients Benjamini-Hochberg names nobody (p = 0.0035 against 0.005 / 492); none
    of the others can ever reach the level, and with them left out, a is named."""
    scored = ["a"] * 8 + [f"s{i}" for i in range(192)]
    holdout = ["a"] + [f"h{i}" for i in range(299)]
    counts = patient_counts(scored, holdout)
    assert len(counts) == 492 and not any(benjamini_hochberg([count.p_value for count in counts], 0.005))
    named, tested = named_by_count(counts, 0.005)
    assert [count.patient for count in named] == ["a"] and tested == 1


def test_under_the_null_patients_are_named_at_most_at_the_level():
    """Images of unseen patients, split at random into scored and holdout (exchangeable), attributed to
    training patients of very unequal pull (Zipf-like hubs): the share of runs naming anyone stays within
    the level (plus three standard errors)."""
    rng, alpha, runs = random.Random(0), 0.05, 2000
    patients = [f"p{i}" for i in range(300)]
    weights = [1 / (rank + 1) for rank in range(len(patients))]
    false = 0
    for _ in range(runs):
        images = rng.choices(patients, weights=weights, k=400)
        counts = patient_counts(images[:100], images[100:])
        false += bool(named_by_count(counts, alpha)[0])
    assert false / runs <= alpha + 3 * (alpha * (1 - alpha) / runs) ** 0.5


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="impossible counts"):
        draw_tail(3, scored_draws=4, scored=4, holdout=2)
