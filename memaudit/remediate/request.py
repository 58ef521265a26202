"""What a remediation is asked to do: the models, the data, the policy, the search and its storage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memaudit.data.columns import DataConfig
from memaudit.policy import PolicyOverrides

# Fields that hold paths: a job record stores them absolute, so a worker anywhere can find the files.
PATH_FIELDS = frozenset({"model", "base", "train", "holdout", "out", "mask", "feature_cache", "config_dir"})


@dataclass(frozen=True)
class RemediateRequest:
    model: Path
    base: Path
    train: Path
    holdout: Path
    policy: Path | str
    out: Path
    spaces: tuple[str, ...] | None = None
    trials: int | None = None
    storage: str | None = None
    study: str | None = None
    mask: Path | None = None
    sign_key: Path | None = None
    device: str = "cpu"
    feature_cache: Path | None = None
    config_dir: Path | None = None
    allow_pickle: bool = False
    heartbeat: int = 30
    search_anyway: bool = False  # remediate even when the model already passes the policy
    data: DataConfig | None = None  # how the train and holdout manifests name their columns
    # LoRA (file, scale) pairs fused into ``model`` for its scan (the submitted fine-tune is base + adapters);
    # the remediation retrains from ``base`` and its result is a model of its own, scanned without them.
    adapters: tuple[tuple[Path, float], ...] = ()

    @property
    def overrides(self) -> PolicyOverrides:
        return PolicyOverrides(spaces=self.spaces, trials=self.trials)
