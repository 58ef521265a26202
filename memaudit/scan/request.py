"""What a scan is asked to do: the inputs, the policy and the command line's overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from memaudit.checkpoint.families import BY_NAME
from memaudit.data.columns import DataConfig
from memaudit.policy import Policy, PolicyOverrides


@dataclass(frozen=True)
class ScanRequest:
    """Everything a scan needs; exactly one of ``model`` and ``images``."""

    train: Path
    holdout: Path
    policy: Path | str
    model: Path | None = None
    images: Path | None = None
    config_dir: Path | None = None
    allow_pickle: bool = False
    seed: int | None = None
    batch_size: int | None = None
    device: str = "cpu"
    feature_cache: Path | None = None
    include_evidence_images: bool = False  # internal reports only: puts training pixels in the result
    before: Path | None = None  # a previous scan's result.json: the re-trigger check tests its prompts
    base: Path | None = None  # the model ``model`` was fine-tuned from: the membership check's reference
    data: DataConfig | None = None  # how the train and holdout manifests name their columns
    adapters: tuple[tuple[Path, float], ...] = ()  # LoRA (file, scale) pairs fused into ``model``

    @property
    def overrides(self) -> PolicyOverrides:
        return PolicyOverrides(seed=self.seed, batch_size=self.batch_size)


def sampling_dtype(name: str, device: str) -> torch.dtype:
    """The policy's dtype on CUDA; float32 elsewhere (half-precision convolutions are slow or missing on
    CPUs, and float32 there is what makes a CPU scan the reference)."""
    return getattr(torch, name) if torch.device(device).type == "cuda" else torch.float32


def with_family_defaults(policy: Policy, family: str) -> Policy:
    """The policy as it samples this family: with ``sampling.family_defaults``, the family's own guidance
    scale (``checkpoint.families``) in place of ``guidance_scale``; unchanged otherwise."""
    if not policy.sampling.family_defaults:
        return policy
    sampling = policy.sampling.model_copy(update={"guidance_scale": BY_NAME[family].guidance})
    return policy.model_copy(update={"sampling": sampling})
