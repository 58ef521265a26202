"""Detection quality of a score that should be higher for members (memorized prompts) than for non-members.

- AUC: the probability that a random member outscores a random non-member, ties counting one half
  (the Mann-Whitney U statistic over n_pos * n_neg).
- TPR at a false-positive rate: the threshold is the smallest score that at most ``fpr`` of the
  non-members exceed; TPR is the share of members above it (as Wen et al. report TPR@1%FPR).
"""

from __future__ import annotations

import math

import torch


def _scores(values, name: str) -> torch.Tensor:
    scores = torch.as_tensor(values, dtype=torch.float64).flatten()
    if scores.numel() == 0 or not torch.isfinite(scores).all():
        raise ValueError(f"`{name}` must be a non-empty set of finite scores")
    return scores


def roc_auc(positives, negatives) -> float:
    pos, neg = _scores(positives, "positives"), _scores(negatives, "negatives")
    greater = (pos[:, None] > neg[None, :]).sum().item()
    ties = (pos[:, None] == neg[None, :]).sum().item()
    return (greater + 0.5 * ties) / (pos.numel() * neg.numel())


def tpr_at_fpr(positives, negatives, fpr: float = 0.01) -> float:
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"`fpr` must be in [0, 1), got {fpr}")
    pos, neg = _scores(positives, "positives"), _scores(negatives, "negatives")
    allowed = math.floor(fpr * neg.numel())  # non-members that may score above the threshold
    threshold = torch.sort(neg, descending=True).values[allowed].item()
    return (pos > threshold).double().mean().item()
