"""On-disk feature cache keyed by (image file digest, extractor name, extractor weights digest).

One sealed file per image under ``ROOT/<extractor>/<weights digest>/`` (memaudit.sealing): it records the
image digest, extractor and weights it was computed from, and a keyed digest of the features. An entry
that does not verify is reported through ``on_stale``, recomputed and replaced (atomically, so a killed
run never leaves a half-written entry). Features of random-weight extractors are never cached.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from memaudit.data.dataset import ImageCaptionDataset
from memaudit.features.base import FeatureExtractor
from memaudit.sealing import StaleEntry, read_sealed, write_sealed


class FeatureCache:
    def __init__(
        self, root: Path, extractor: FeatureExtractor, *, on_stale: Callable[[str], None] | None = None
    ) -> None:
        self.enabled = extractor.weights_digest != "random"
        self.folder = Path(root) / extractor.name / extractor.weights_digest
        self._extractor = (extractor.name, extractor.weights_digest, extractor.feature_dim)
        self._on_stale = on_stale or (lambda message: None)

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.features"

    def _provenance(self, digest: str) -> dict:
        name, weights, _ = self._extractor
        return {"kind": "features", "image_sha256": digest, "extractor": name, "weights": weights}

    def get(self, digest: str) -> torch.Tensor | None:
        """The features of the image with this digest, or None: not cached, or stale (reported)."""
        path = self._path(digest)
        if not self.enabled or not path.is_file():
            return None
        try:
            content = read_sealed(path, provenance=self._provenance(digest))
            features = np.load(io.BytesIO(content), allow_pickle=False)
        except (OSError, ValueError, StaleEntry) as error:
            self._on_stale(f"feature cache: {error if isinstance(error, StaleEntry) else f'{path}: {error}'}")
            return None
        if features.shape != (self._extractor[2],) or features.dtype != np.float32:
            self._on_stale(f"feature cache: {path}: holds {features.dtype} {features.shape}, not the extractor's")
            return None
        return torch.from_numpy(features)

    def put(self, digest: str, features: torch.Tensor) -> None:
        if not self.enabled:
            return
        stream = io.BytesIO()
        np.save(stream, features.numpy().astype(np.float32), allow_pickle=False)
        write_sealed(self._path(digest), stream.getvalue(), provenance=self._provenance(digest))


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
