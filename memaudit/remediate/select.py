"""Choosing one trial from the Pareto front (study.best_trials), as DESIGN section 5 defines it."""

from __future__ import annotations

import optuna

from memaudit.errors import MemauditError


def normalized_mean_choice(front: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    """The trial with the lowest mean of its two objectives after min-max normalisation over the front."""
    if not front:
        raise MemauditError("the search has no completed trial to choose from")
    scores = []
    for objective in range(2):
        values = [trial.values[objective] for trial in front]
        low, high = min(values), max(values)
        span = high - low
        scores.append([(v - low) / span if span > 0 else 0.0 for v in values])
    means = [(a + b) / 2 for a, b in zip(*scores, strict=True)]
    return min(zip(means, front, strict=True), key=lambda pair: (pair[0], pair[1].number))[1]


def best_fid_within(front: list[optuna.trial.FrozenTrial], max_memorization: float | None):
    """The best-FID trial whose memorization meets the limit; the normalised-mean choice if none does."""
    feasible = [t for t in front if max_memorization is None or t.values[0] <= max_memorization]
    if not feasible:
        return normalized_mean_choice(front)
    return min(feasible, key=lambda trial: (trial.values[1], trial.number))


def choose(study: optuna.Study, rule: str, max_memorization: float | None) -> optuna.trial.FrozenTrial:
    front = study.best_trials
    if rule == "best-fid-within-constraint":
        return best_fid_within(front, max_memorization)
    return normalized_mean_choice(front)
