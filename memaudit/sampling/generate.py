"""Seeded, batched image generation with the policy's sampler, decoded to [0, 1] tensors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import torch

from memaudit.denoiser import Conditioning, denoiser_for
from memaudit.sampling.seeds import initial_latents


@torch.no_grad()
def decode_latents(model, latents: torch.Tensor) -> torch.Tensor:
    """VAE-decode latents to ``[N, 3, H, W]`` float32 images in [0, 1]."""
    return denoiser_for(model).decode(latents)


@torch.no_grad()
def generate_images(
    model,
    prompt_embeddings: Conditioning,
    empty_embedding: Conditioning,
    *,
    seeds: list[int],
    num_inference_steps: int,
    guidance_scale: float,
    latent_size: int,
    scheduler: str = "ddim",
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """One image per (conditioning row, seed): N rows and N seeds -> ``[N, 3, H, W]``.

    Guidance applies as the family's pipeline applies it (``Denoiser.mix``) when ``guidance_scale > 1``.
    """
    if len(prompt_embeddings) != len(seeds):
        raise ValueError(f"need one seed per embedding: {len(prompt_embeddings)} embeddings, {len(seeds)} seeds")
    denoiser = denoiser_for(model)
    shape = denoiser.latent_shape(latent_size)
    images = []
    for start in range(0, len(seeds), batch_size):
        stop = min(start + batch_size, len(seeds))
        sampler = denoiser.make_sampler(scheduler, num_inference_steps, latent_side=latent_size)
        latents = denoiser.start_latents(sampler, initial_latents(shape, seeds[start:stop]))
        cond = prompt_embeddings[start:stop]
        for timestep in sampler.timesteps:
            output = denoiser.guided_output(
                sampler, latents, timestep=timestep, cond=cond, uncond=empty_embedding, scale=guidance_scale
            )
            latents = sampler.step(output, timestep, latents).prev_sample
        images.append(denoiser.decode(latents))
        if progress:
            progress(stop - start)
    side = latent_size * denoiser.latent_factor
    return torch.cat(images) if images else torch.empty(0, 3, side, side)


def generate_stream(
    model,
    requests: Iterable[tuple[Conditioning, int]],
    empty_embedding: Conditioning,
    *,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    **sampler,
) -> Iterator[torch.Tensor]:
    """One ``[3, H, W]`` image per ``(single-prompt conditioning, seed)`` request, in order, generated in
    full batches that may span several prompts; requests are drawn lazily, so memory is bounded by one
    batch. ``sampler`` holds ``generate_images``' sampling arguments. An image equals the one
    ``generate_images`` makes from the same conditioning and seed (each latent has its own seed)."""
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
    requests = iter(requests)
    while batch := list(islice(requests, batch_size)):
        embeddings = Conditioning.cat([embedding for embedding, _ in batch])
        seeds = [seed for _, seed in batch]
        images = generate_images(model, embeddings, empty_embedding, seeds=seeds, batch_size=batch_size, **sampler)
        if progress:
            progress(len(batch))
        yield from images
