"""Choosing from a Pareto front: normalised mean, and best FID within the memorization limit."""

from __future__ import annotations

import optuna

from memaudit.remediate.select import best_fid_within, normalized_mean_choice


def _trial(number: int, memorization: float, fid: float) -> optuna.trial.FrozenTrial:
    return optuna.trial.FrozenTrial(
        number=number,
        state=optuna.trial.TrialState.COMPLETE,
        values=[memorization, fid],
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=number,
        value=None,
    )


def test_normalized_mean_picks_the_balanced_trial():
    front = [_trial(0, 0.0, 100.0), _trial(1, 0.4, 30.0), _trial(2, 1.0, 10.0)]
    # normalised: (0, 1) -> 0.5, (0.4, 0.222) -> 0.311, (1, 0) -> 0.5
    assert normalized_mean_choice(front).number == 1


def test_best_fid_within_the_limit():
    front = [_trial(0, 0.1, 50.0), _trial(1, 0.3, 20.0), _trial(2, 0.9, 5.0)]
    assert best_fid_within(front, 0.5).number == 1
    assert best_fid_within(front, None).number == 2
    assert best_fid_within(front, 0.01).number == normalized_mean_choice(front).number
