"""The outer loop: an optuna NSGA-II study over (PEFT space, block mask), both objectives minimised.

Storage is any SQLAlchemy URL (a SQLite file by default); several workers, processes or machines,
join one study by name. Heartbeats let a study killed mid-trial resume: the stale trial is marked
failed and retried, completed trials are kept. Each trial records its mask, space, trainable count
and metrics as user attributes.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import optuna

from memaudit.checkpoint.families import denoising_network, family_of_pipeline
from memaudit.finetune.config import TrainConfig
from memaudit.finetune.mask import BlockMask, expand_units, search_units
from memaudit.finetune.methods import apply_method, trainable_count
from memaudit.finetune.training import train
from memaudit.policy import Policy
from memaudit.remediate.objectives import ObjectiveInputs, evaluate

DIRECTIONS = ["minimize", "minimize"]  # memorization, FID
HEARTBEAT_SECONDS = 30


@dataclass
class TrialContext:
    """What every trial needs, built once per worker."""

    base_pipeline: object
    blocks: tuple[str, ...]
    proxy: object  # ImageCaptionDataset of the proxy data
    inputs: ObjectiveInputs
    policy: Policy
    work_dir: Path


def training_config(policy: Policy, space: str, mask: BlockMask, *, steps: int) -> TrainConfig:
    """How a (space, mask) is trained, in the search's inner loop and when the choice is retrained."""
    settings = policy.remediation
    return TrainConfig(
        method=space,
        mask=mask.as_string(),
        lora_rank=settings.lora_rank,
        steps=steps,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        seed=policy.sampling.seed,
        checkpoint_every=max(1, steps // 10),
    )


def storage_for(url: str, *, heartbeat: int = HEARTBEAT_SECONDS) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a trial whose worker died is failed after two missed beats and retried."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # heartbeats are marked experimental; their behaviour is what we test
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
        )


def _constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    return [trial.user_attrs.get("constraint", 0.0)]


def open_study(name: str, storage: optuna.storages.BaseStorage, policy: Policy) -> optuna.Study:
    settings = policy.remediation
    sampler = optuna.samplers.NSGAIISampler(
        population_size=settings.population_size,
        seed=policy.sampling.seed,
        constraints_func=_constraints if settings.max_memorization is not None else None,
    )
    return optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, directions=DIRECTIONS, load_if_exists=True
    )


def objective(context: TrialContext) -> Callable[[optuna.Trial], tuple[float, float]]:
    settings = context.policy.remediation

    def run(trial: optuna.Trial) -> tuple[float, float]:
        space = trial.suggest_categorical("space", list(settings.spaces))
        units = search_units(len(context.blocks))  # a deep DiT's blocks in contiguous runs
        bits = tuple(bool(trial.suggest_categorical(f"block_{i:02d}", [0, 1])) for i in range(len(units)))
        mask = BlockMask(context.blocks, expand_units(bits, units))
        pipeline = copy.copy(context.base_pipeline)
        network = denoising_network(context.base_pipeline)
        name = family_of_pipeline(context.base_pipeline).module  # unet or transformer
        setattr(pipeline, name, copy.deepcopy(network))
        method = apply_method(space, getattr(pipeline, name), mask, lora_rank=settings.lora_rank)
        trainable = trainable_count(method)
        config = training_config(context.policy, space, mask, steps=settings.inner_steps)
        image_side = context.inputs.image_side
        train(
            pipeline,
            method,
            dataset=context.proxy,
            config=config,
            image_size=image_side,
            checkpoint_dir=context.work_dir / f"trial-{trial.number:04d}",
        )
        setattr(pipeline, name, method.merge())
        memorization, fid = evaluate(pipeline, context.inputs, context.policy)
        trial.set_user_attr("mask", mask.as_string())
        trial.set_user_attr("space", space)
        trial.set_user_attr("trainable_parameters", trainable)
        trial.set_user_attr("memorization", memorization)
        trial.set_user_attr("fid", fid)
        if settings.max_memorization is not None:
            trial.set_user_attr("constraint", memorization - settings.max_memorization)
        return memorization, fid

    return run


def run_search(study: optuna.Study, context: TrialContext, *, total_trials: int, on_trial=None) -> None:
    """Work on the study until it holds ``total_trials`` completed trials (shared by all workers)."""
    callbacks = [optuna.study.MaxTrialsCallback(total_trials, states=(optuna.trial.TrialState.COMPLETE,))]
    if on_trial is not None:
        callbacks.append(lambda study, trial: on_trial(trial))
    while _completed(study) < total_trials:
        study.optimize(objective(context), n_trials=1, callbacks=callbacks, catch=())
    wait_for_running(study)


def wait_for_running(study: optuna.Study, *, poll: float = 1.0, slack: float = 60.0) -> None:
    """Wait until no other worker's trial is still running, so the Pareto front read next is final (a
    trial finishing after it was read would be missing from the record). A dead worker's trial is failed
    by its missed heartbeats; one running longer than twice the longest completed trial plus ``slack``
    seconds (a worker killed before its first heartbeat) is not waited for."""
    while True:
        with warnings.catch_warnings():  # experimental in optuna, like the heartbeats it reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        longest = max((trial.duration for trial in done if trial.duration), default=timedelta(0))
        limit = 2 * longest + timedelta(seconds=slack)
        now = datetime.now()  # optuna records trial times as naive local time
        if not [trial for trial in running if trial.datetime_start and now - trial.datetime_start < limit]:
            return
        time.sleep(poll)


def _completed(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
