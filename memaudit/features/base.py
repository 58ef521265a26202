"""The feature-extractor interface and the registry of extractors by name."""

from __future__ import annotations

from collections.abc import Callable
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


EXTRACTORS: dict[str, Callable[[ExtractorOptions], FeatureExtractor]] = {}


def register(name: str):
    def decorator(factory: Callable[[ExtractorOptions], FeatureExtractor]):
        EXTRACTORS[name] = factory
        return factory

    return decorator


def extractor_names() -> list[str]:
    """Names of every registered extractor (importing the implementations registers them)."""
    import memaudit.features.pixels
    import memaudit.features.xrv_densenet  # noqa: F401

    return sorted(EXTRACTORS)


def create_extractor(name: str, options: ExtractorOptions | None = None) -> FeatureExtractor:
    if name not in extractor_names():
        raise ExtractorUnavailable(f"unknown feature extractor '{name}'; available: {', '.join(extractor_names())}")
    return EXTRACTORS[name](options or ExtractorOptions())


@torch.no_grad()
def extract_features(extractor: FeatureExtractor, images: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor:
    """Features of a ``[N, C, H, W]`` batch in [0, 1]."""
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        inputs = torch.stack([extractor.preprocess(image) for image in images[start : start + batch_size]])
        chunks.append(extractor.embed(inputs).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, extractor.feature_dim)
