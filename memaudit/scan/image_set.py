"""Images the sample checks read a batch at a time: a generated sample already in memory, or a
release's files, each decoded and brought to the scan's side only when its batch is read (a release
of 10^4 images at 512 px would be 30 GiB as one float32 tensor)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from memaudit.data import ImageCaptionDataset, conform


@dataclass(frozen=True)
class ImageSet:
    count: int
    _batches: Callable[[int], Iterator[torch.Tensor]]

    def __len__(self) -> int:
        return self.count

    def batches(self, size: int) -> Iterator[torch.Tensor]:
        """``[B, 3, H, W]`` batches of at most ``size`` images, in order."""
        return self._batches(size)

    @classmethod
    def in_memory(cls, images: torch.Tensor) -> ImageSet:
        return cls(len(images), lambda size: iter(images.split(size)))

    @classmethod
    def from_dataset(cls, dataset: ImageCaptionDataset, *, side: int) -> ImageSet:
        def batches(size: int) -> Iterator[torch.Tensor]:
            for start in range(0, len(dataset), size):
                rows = range(start, min(start + size, len(dataset)))
                yield torch.stack([conform(dataset.load_image(row), size=side, channels=3) for row in rows])

        return cls(len(dataset), batches)
