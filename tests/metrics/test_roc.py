"""AUC and TPR at a fixed FPR: known answers and scipy's Mann-Whitney U as the reference."""

from __future__ import annotations

import pytest
import torch

from memaudit.metrics.roc import roc_auc, tpr_at_fpr


def test_known_answers():
    assert roc_auc([3, 4], [1, 2]) == 1.0
    assert roc_auc([1, 2], [3, 4]) == 0.0
    assert roc_auc([2], [2]) == 0.5
    assert roc_auc([1, 3], [2]) == 0.5
    negatives = list(range(100))  # the threshold at 1% FPR is 98: one negative (99) lies above it
    assert tpr_at_fpr([98.5, 99.5, 50], negatives, 0.01) == pytest.approx(2 / 3)
    assert tpr_at_fpr([98.5], negatives, 0.0) == 0.0 and tpr_at_fpr([100], negatives, 0.0) == 1.0


def test_auc_equals_mann_whitney_u():
    stats = pytest.importorskip("scipy.stats", reason="scipy is the reference implementation")
    generator = torch.Generator().manual_seed(0)
    positives = torch.randint(0, 20, (37,), generator=generator).double()  # integer scores: many ties
    negatives = torch.randint(0, 15, (53,), generator=generator).double()
    u = stats.mannwhitneyu(positives.numpy(), negatives.numpy(), alternative="two-sided").statistic
    assert roc_auc(positives, negatives) == pytest.approx(u / (37 * 53), abs=1e-12)


@pytest.mark.parametrize(
    ("positives", "negatives", "fpr"), [([], [1], 0.01), ([1], [float("nan")], 0.01), ([1], [1], 1.0)]
)
def test_bad_inputs_are_refused(positives, negatives, fpr):
    with pytest.raises(ValueError):
        tpr_at_fpr(positives, negatives, fpr)
