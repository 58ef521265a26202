"""The search waits for other workers' running trials before its Pareto front is read."""

from __future__ import annotations

import threading
import time

import optuna

from memaudit.remediate.search import wait_for_running


def _study_with_a_running_trial():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize", "minimize"])
    done = study.ask()
    study.tell(done, (1.0, 1.0))
    return study, study.ask()  # the second trial stays RUNNING, as another worker's would


def test_waits_until_another_workers_trial_completes():
    study, running = _study_with_a_running_trial()
    finisher = threading.Timer(0.3, lambda: study.tell(running, (0.5, 0.5)))
    finisher.start()
    started = time.monotonic()
    wait_for_running(study, poll=0.05, slack=30.0)
    assert 0.25 <= time.monotonic() - started < 10
    assert {trial.number for trial in study.best_trials} == {1}  # the late trial is on the front it reads
    finisher.join()


def test_does_not_wait_for_ever_on_a_trial_nobody_is_running():
    study, _ = _study_with_a_running_trial()
    started = time.monotonic()
    wait_for_running(study, poll=0.05, slack=0.4)
    assert 0.35 <= time.monotonic() - started < 5
