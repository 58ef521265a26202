"""Train a tiny AutoencoderKL on phantom images: reconstruction (L1 + MSE) plus a small KL term.

The first stage of memaudit's own tiny SD models (the UNet is then trained with the fine-tuning
engine, `full` over `all` blocks). Seeded: batches and posterior samples of step k come from (seed, k).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.data import ImageCaptionDataset, conform
from memaudit.sampling.seeds import sample_seed


def load_images(dataset: ImageCaptionDataset, size: int) -> torch.Tensor:
    """All images as ``[N, 3, size, size]`` in [-1, 1], the range diffusers' VAEs work in."""
    return torch.stack([conform(dataset.load_image(i), size=size, channels=3) for i in range(len(dataset))]) * 2 - 1


def vae_loss(vae, images: torch.Tensor, *, generator: torch.Generator, kl_weight: float) -> torch.Tensor:
    posterior = vae.encode(images).latent_dist
    noise = torch.randn(posterior.mean.shape, generator=generator).to(images.device)
    latents = posterior.mean + posterior.std * noise
    reconstruction = vae.decode(latents).sample
    error = reconstruction - images
    return error.abs().mean() + error.pow(2).mean() + kl_weight * posterior.kl().mean() / latents[0].numel()


def train_vae(
    vae,
    images: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    kl_weight: float = 1e-3,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train in place; returns the loss of every step."""
    if steps < 0 or batch_size < 1:
        raise ValueError(f"need steps >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate, weight_decay=0.0)
    vae.train()
    losses = []
    for step in range(steps):
        generator = torch.Generator().manual_seed(sample_seed(seed, "vae", step))
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)].to(vae.device)
        loss = vae_loss(vae, batch, generator=generator, kl_weight=kl_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step + 1, losses[-1])
    vae.eval()
    return losses


@torch.no_grad()
def reconstruction_error(vae, images: torch.Tensor) -> float:
    """Mean absolute error of encode-mean -> decode, in [0, 1] image units."""
    reconstruction = vae.decode(vae.encode(images).latent_dist.mean).sample
    return float((reconstruction - images).abs().mean() / 2)
