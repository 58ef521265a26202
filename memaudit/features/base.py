"""The feature-extractor interface: what every extractor implements, and batched extraction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from memaudit.errors import MemauditError


class ExtractorUnavailable(MemauditError):
    """An extractor that cannot run as asked: unknown name, or no weights."""


class FeatureExtractor(Protocol):
    name: str
    weights_digest: str  # sha256 of the weights file, "random" or "none"; part of every cache key
    feature_dim: int

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """One ``[C, H, W]`` image in [0, 1] -> the fixed-size model input for it."""
        ...

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """A batch of preprocessed inputs -> ``[N, feature_dim]`` float32 features."""
        ...


@dataclass(frozen=True)
class ExtractorOptions:
    weights: Path | None = None
    allow_random_weights: bool = False  # tests only: a random network is no evidence of anything
    allow_pickle: bool = False
    device: str = "cpu"


@torch.no_grad()
def extract_features(extractor: FeatureExtractor, images: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor:
    """Features of a ``[N, C, H, W]`` batch in [0, 1]."""
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        inputs = torch.stack([extractor.preprocess(image) for image in images[start : start + batch_size]])
        chunks.append(extractor.embed(inputs).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, extractor.feature_dim)
