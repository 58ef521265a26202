"""The count test of candidates below the holdout's resolution and its closed-testing bound on copies."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from memaudit.metrics.copy_count import copies_lower_bound, count_tail


def test_below_every_holdout_value_the_tail_is_a_ratio_of_binomial_coefficients():
    # The j smallest of the m + n pooled values must all be candidates: C(m, j) / C(m + n, j).
    assert count_tail(7, candidates=36, holdout=100, rank=1) == pytest.approx(math.comb(36, 7) / math.comb(136, 7))
    assert count_tail(1, candidates=30, holdout=100, rank=1) == pytest.approx(30 / 130)
    assert count_tail(0, candidates=5, holdout=10, rank=3) == 1.0
    assert count_tail(6, candidates=5, holdout=10, rank=3) == 0.0


def test_seven_of_36_candidates_below_a_100_image_holdout_are_at_least_five_copies():
    """The full + threshold case of the ground-truth bench, worked by hand: with the rest of the 36 added,
    3 of 32 below is C(32,3)/C(132,3) = 0.0132 <= 0.015, 2 of 31 below is 0.0546 > 0.015."""
    assert count_tail(3, candidates=32, holdout=100, rank=1) == pytest.approx(4960 / 374660)
    assert copies_lower_bound(7, candidates=36, holdout=100, rank=1, alpha=0.015) == 5
    assert copies_lower_bound(1, candidates=36, holdout=100, rank=1, alpha=0.015) == 0  # one is no evidence
    assert copies_lower_bound(0, candidates=36, holdout=100, rank=1, alpha=0.015) == 0


def test_the_tail_matches_simulated_exchangeable_draws():
    rng = np.random.default_rng(0)
    candidates, holdout, draws = 12, 20, 40_000
    values = rng.random((draws, candidates + holdout))
    for rank in (1, 3):
        cut = np.sort(values[:, candidates:], axis=1)[:, rank - 1 : rank]
        below = (values[:, :candidates] < cut).sum(axis=1)
        for count in (1, 2, 4, 6):
            expected = count_tail(count, candidates=candidates, holdout=holdout, rank=rank)
            error = 4 * math.sqrt(expected * (1 - expected) / draws) + 1e-4
            assert np.mean(below >= count) == pytest.approx(expected, abs=error)


def _closed_testing_bound(below: int, candidates: int, holdout: int, rank: int, alpha: float) -> int:
    """Goeman and Solari's definition, by brute force over every set of candidates: the fewest copies
    among the ``below`` set over all sets of nulls that closed testing does not reject."""
    everyone = range(candidates)
    marked = set(range(below))  # the first ``below`` candidates are the ones below the cut

    @functools.cache
    def rejects(count: int, size: int) -> bool:
        return count_tail(count, candidates=size, holdout=holdout, rank=rank) <= alpha

    def locally_rejected(group: frozenset[int]) -> bool:
        return rejects(len(group & marked), len(group))

    groups = [frozenset(c) for size in range(1, candidates + 1) for c in itertools.combinations(everyone, size)]
    kept = [g for g in groups if not all(locally_rejected(h) for h in groups if g <= h)]
    return min((len(marked - g) for g in kept), default=below)


@pytest.mark.parametrize("candidates,holdout,rank,alpha", [(7, 6, 1, 0.05), (8, 12, 2, 0.1), (6, 4, 1, 0.2)])
def test_the_shortcut_equals_closed_testing_by_brute_force(candidates, holdout, rank, alpha):
    for below in range(candidates + 1):
        expected = _closed_testing_bound(below, candidates, holdout, rank, alpha)
        assert copies_lower_bound(below, candidates=candidates, holdout=holdout, rank=rank, alpha=alpha) == expected


def test_when_nothing_is_copied_a_copy_is_claimed_at_most_at_the_level():
    rng = np.random.default_rng(1)
    candidates, holdout, alpha, draws = 30, 50, 0.05, 20_000
    values = rng.random((draws, candidates + holdout))
    smallest = values[:, candidates:].min(axis=1, keepdims=True)
    below = (values[:, :candidates] < smallest).sum(axis=1)
    claims = {
        b: copies_lower_bound(b, candidates=candidates, holdout=holdout, rank=1, alpha=alpha)
        for b in set(below.tolist())
    }
    assert np.mean([claims[b] > 0 for b in below.tolist()]) <= alpha


def test_the_bound_never_exceeds_the_count_and_grows_with_it():
    bounds = [copies_lower_bound(k, candidates=40, holdout=60, rank=2, alpha=0.01) for k in range(41)]
    assert all(0 <= b <= k for k, b in enumerate(bounds))
    assert bounds == sorted(bounds)
    assert bounds[-1] > 30


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"below": 3, "candidates": 5, "holdout": 10, "rank": 1, "alpha": 0.0}, "`alpha` must be in"),
        ({"below": 6, "candidates": 5, "holdout": 10, "rank": 1, "alpha": 0.05}, "`below` must be between 0"),
        ({"below": 1, "candidates": 5, "holdout": 10, "rank": 11, "alpha": 0.05}, "`rank` must be between 1"),
        ({"below": 1, "candidates": 5, "holdout": 0, "rank": 1, "alpha": 0.05}, "`rank` must be between 1"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    below = kwargs.pop("below")
    with pytest.raises(ValueError, match=message):
        copies_lower_bound(below, **kwargs)
