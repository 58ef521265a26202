"""Images into the latent space the denoiser works in: the VAE posterior mean, scaled (no sampling)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.data import ImageCaptionDataset, conform
from memaudit.denoiser import denoiser_for


@torch.no_grad()
def encode_latents(
    model,
    dataset: ImageCaptionDataset,
    *,
    image_size: int,
    rows: list[int] | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[len(rows), C, h, w]`` scaled latent means of the dataset's images (all rows by default)."""
    denoiser = denoiser_for(model)
    rows = list(range(len(dataset))) if rows is None else rows
    latents = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        images = torch.stack([conform(dataset.load_image(i), size=image_size, channels=3) for i in chunk])
        latents.append(denoiser.encode_images(images))
        if progress:
            progress(len(chunk))
    return torch.cat(latents) if latents else torch.empty(0)
