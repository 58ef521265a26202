"""`pixels`: downsampled grayscale pixels as features. No weights; a sanity baseline and a test aid."""

from __future__ import annotations

import torch

from memaudit.data.dataset import conform


class PixelFeatures:
    name = "pixels"
    weights_digest = "none"

    def __init__(self, side: int = 32) -> None:
        if side < 1:
            raise ValueError(f"`side` must be at least 1, got {side}")
        self.side = side
        self.feature_dim = side * side

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        return conform(image, size=self.side, channels=1)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        # Centre each image so that cosine distance compares structure, not overall brightness.
        flat = inputs.flatten(1).float()
        return flat - flat.mean(dim=1, keepdim=True)
