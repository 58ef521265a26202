"""On-disk feature cache keyed by (image file digest, extractor name, extractor weights digest).

One ``.npy`` per image under ``ROOT/<extractor>/<weights digest>/``; written atomically, so a killed
run never leaves a half-written entry. Features of random-weight extractors are never cached.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from memaudit.data.dataset import ImageCaptionDataset
from memaudit.features.base import FeatureExtractor


class FeatureCache:
    def __init__(self, root: Path, extractor: FeatureExtractor) -> None:
        self.enabled = extractor.weights_digest != "random"
        self.folder = Path(root) / extractor.name / extractor.weights_digest

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.npy"

    def get(self, digest: str) -> torch.Tensor | None:
        path = self._path(digest)
        if not self.enabled or not path.is_file():
            return None
        return torch.from_numpy(np.load(path))

    def put(self, digest: str, features: torch.Tensor) -> None:
        if not self.enabled:
            return
        path = self._path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, features.numpy().astype(np.float32))
        os.replace(temporary, path)


@torch.no_grad()
def dataset_features(
    dataset: ImageCaptionDataset,
    extractor: FeatureExtractor,
    *,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[N, D]`` features of every dataset image, reading and filling the cache."""
    digests = dataset.image_digests
    features: list[torch.Tensor | None] = [cache.get(d) if cache else None for d in digests]
    missing = [index for index, value in enumerate(features) if value is None]
    if progress and len(missing) < len(features):
        progress(len(features) - len(missing))
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        inputs = torch.stack([extractor.preprocess(dataset.load_image(index)) for index in batch])
        for index, row in zip(batch, extractor.embed(inputs).float().cpu(), strict=True):
            features[index] = row
            if cache:
                cache.put(digests[index], row)
        if progress:
            progress(len(batch))
    return torch.stack(features) if features else torch.empty(0, extractor.feature_dim)  # type: ignore[arg-type]
