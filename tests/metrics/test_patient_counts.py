"""The patient count test: exact hypergeometric tails, checked by hand, by enumeration and against scipy."""

from __future__ import annotations

import itertools

import pytest

from memaudit.metrics.patient_counts import draw_tail, patient_counts


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
    assert [(c.patient, c.scored, c.holdout) for c in counts] == [("a", 1, 2), ("b", 3, 1)]
    assert counts[1].p_value == pytest.approx(draw_tail(4, scored_draws=3, scored=4, holdout=6))


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="impossible counts"):
        draw_tail(3, scored_draws=4, scored=4, holdout=2)
