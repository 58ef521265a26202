"""The records a scan result keeps of what it ran on: the environment, each data set, the policy."""

from __future__ import annotations

import platform

import torch

from memaudit import __version__
from memaudit.data import ImageCaptionDataset
from memaudit.policy import EffectivePolicy
from memaudit.results.scan_result import DatasetRecord, Environment, PolicyRecord


def environment_record(device: str, dtype: torch.dtype | None) -> Environment:
    import diffusers
    import transformers

    return Environment(
        memaudit=__version__,
        python=platform.python_version(),
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        transformers=transformers.__version__,
        device=device,
        dtype=str(dtype).removeprefix("torch.") if dtype is not None else None,
    )


def dataset_record(dataset: ImageCaptionDataset) -> DatasetRecord:
    return DatasetRecord(source=str(dataset.source), digest=dataset.digest, items=len(dataset))


def policy_record(effective: EffectivePolicy) -> PolicyRecord:
    policy = effective.policy
    return PolicyRecord(
        name=policy.name,
        file=effective.loaded.path.name,
        sha256=effective.loaded.sha256,
        content=policy.model_dump(mode="json"),
        overrides=effective.overrides,
    )
