"""How many candidates are copies at least, when several come closer than a small holdout can resolve
(DESIGN 3.5).

A conformal p-value never falls below 1 / (n + 1), so the Benjamini-Hochberg step-up over m candidates
selects none of them until about m / (alpha (n + 1)) sit at that floor: with 100 holdout images, 36
attacked prompts and alpha = 0.03, twelve. Yet seven candidates closer than every unseen image is strong
evidence on its own. If no candidate is a copy, the candidates' distances and the n holdout distances
are exchangeable, and the chance that at least j of m candidates fall below the h-th smallest holdout
value is a hypergeometric tail: the j + h - 1 smallest of the m + n pooled values hold at least j
candidates. It is exact whatever the distribution of the distances (ties aside) and accounts for the
shared holdout, which a binomial count of floor p-values would not (a holdout whose smallest value
happens to be large lets many candidates below it at once).

That count is the local test of a closed testing procedure (Goeman & Solari 2011): the hypothesis that
a set I of candidates holds no copy is rejected when the count of I's members below is improbable for
|I| exchangeable values. At least d of the K candidates below are copies, at level alpha and whichever
set one looks at afterwards, when every set holding K - d + 1 of them is rejected; the hardest such set
adds all m - K other candidates. So d is the number of j = K, K - 1, ... with tail(j of m - K + j) <= alpha,
counted down until one is not. Counting only candidates that meet further per-candidate criteria (a
clique, a distance ratio) keeps the test valid: under the null that count is at most the plain one.
"""

from __future__ import annotations

from scipy.stats import hypergeom


def count_tail(count: int, *, candidates: int, holdout: int, rank: int) -> float:
    """P(at least ``count`` of ``candidates`` values fall below the ``rank``-th smallest of ``holdout``
    values) when all of them are exchangeable."""
    _check(candidates=candidates, holdout=holdout, rank=rank)
    if count <= 0:
        return 1.0
    if count > candidates:
        return 0.0
    pooled = candidates + holdout
    return float(hypergeom(pooled, candidates, count + rank - 1).sf(count - 1))


def copies_lower_bound(below: int, *, candidates: int, holdout: int, rank: int, alpha: float) -> int:
    """How many of the ``below`` candidates (of ``candidates``) that fell below the ``rank``-th smallest
    holdout value are copies at least, at level ``alpha`` (see the module docstring)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha}")
    if not 0 <= below <= candidates:
        raise ValueError(f"`below` must be between 0 and the {candidates} candidates, got {below}")
    others = candidates - below
    copies = 0
    for count in range(below, 0, -1):
        if count_tail(count, candidates=others + count, holdout=holdout, rank=rank) > alpha:
            break
        copies += 1
    return copies


def _check(*, candidates: int, holdout: int, rank: int) -> None:
    if candidates < 0:
        raise ValueError(f"`candidates` must be >= 0, got {candidates}")
    if not 1 <= rank <= holdout:
        raise ValueError(f"`rank` must be between 1 and the {holdout} holdout values, got {rank}")
