"""A policy as one run uses it: the file's policy with the command line's overrides applied and recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memaudit.policy.loading import LoadedPolicy, load_policy
from memaudit.policy.model import Policy


@dataclass(frozen=True)
class PolicyOverrides:
    """What a command line may change; ``None`` keeps the file's value."""

    seed: int | None = None
    batch_size: int | None = None
    spaces: tuple[str, ...] | None = None  # remediation search spaces
    trials: int | None = None  # remediation trials

    def sampling(self) -> dict:
        """The sampling overrides, as recorded in a ScanResult (only the ones given)."""
        given = {"seed": self.seed, "batch_size": self.batch_size}
        return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class EffectivePolicy:
    loaded: LoadedPolicy  # the file as written, with its sha256
    policy: Policy  # what the run uses
    overrides: dict  # the sampling overrides applied (recorded in the result)


def effective_policy(reference: Path | str, overrides: PolicyOverrides | None = None) -> EffectivePolicy:
    """Load ``reference`` (a path or a shipped name) and apply ``overrides``, validated like the file."""
    overrides = overrides or PolicyOverrides()
    loaded = load_policy(reference)
    policy = loaded.policy
    sampling = overrides.sampling()
    if sampling:
        policy = policy.model_copy(update={"sampling": policy.sampling.model_copy(update=sampling)})
    remediation = {}
    if overrides.spaces:
        remediation["spaces"] = list(overrides.spaces)
    if overrides.trials:
        remediation["trials"] = overrides.trials
    if remediation:
        settings = type(policy.remediation).model_validate(policy.remediation.model_dump() | remediation)
        policy = policy.model_copy(update={"remediation": settings})
    return EffectivePolicy(loaded=loaded, policy=policy, overrides=sampling)
