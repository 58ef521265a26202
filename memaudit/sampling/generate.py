"""Seeded, batched image generation with the policy's sampler, decoded to [0, 1] tensors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import torch

from memaudit.sampling.denoise import guided, model_outputs
from memaudit.sampling.scheduler import make_scheduler
from memaudit.sampling.seeds import initial_latents


@torch.no_grad()
def decode_latents(pipeline, latents: torch.Tensor) -> torch.Tensor:
    """VAE-decode latents to ``[N, 3, H, W]`` float32 images in [0, 1]."""
    vae = pipeline.vae
    images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    return (images.float() / 2 + 0.5).clamp(0, 1).cpu()


@torch.no_grad()
def generate_images(
    pipeline,
    prompt_embeddings: torch.Tensor,
    empty_embedding: torch.Tensor,
    *,
    seeds: list[int],
    num_inference_steps: int,
    guidance_scale: float,
    latent_size: int,
    scheduler: str = "ddim",
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """One image per (embedding, seed) row: ``[N, L, D]`` embeddings and N seeds -> ``[N, 3, H, W]``.

    Classifier-free guidance applies when ``guidance_scale > 1``, as in diffusers' pipelines.
    """
    if prompt_embeddings.shape[0] != len(seeds):
        raise ValueError(f"need one seed per embedding: {prompt_embeddings.shape[0]} embeddings, {len(seeds)} seeds")
    unet = pipeline.unet
    device, dtype = unet.device, unet.dtype
    shape = (unet.config.in_channels, latent_size, latent_size)
    use_guidance = guidance_scale > 1.0
    images = []
    for start in range(0, len(seeds), batch_size):
        stop = min(start + batch_size, len(seeds))
        sampler = make_scheduler(pipeline, scheduler, num_inference_steps)
        latents = initial_latents(shape, seeds[start:stop], dtype=dtype).to(device) * sampler.init_noise_sigma
        cond = prompt_embeddings[start:stop].to(device, dtype)
        for timestep in sampler.timesteps:
            if use_guidance:
                out_cond, out_uncond = model_outputs(
                    unet, sampler, latents, timestep=timestep, cond=cond, uncond=empty_embedding.to(device, dtype)
                )
                noise = guided(out_cond, out_uncond, guidance_scale)
            else:
                noise = unet(sampler.scale_model_input(latents, timestep), timestep, encoder_hidden_states=cond).sample
            latents = sampler.step(noise, timestep, latents).prev_sample
        images.append(decode_latents(pipeline, latents))
        if progress:
            progress(stop - start)
    return torch.cat(images) if images else torch.empty(0, 3, latent_size, latent_size)


def generate_stream(
    pipeline,
    requests: Iterable[tuple[torch.Tensor, int]],
    empty_embedding: torch.Tensor,
    *,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    **sampler,
) -> Iterator[torch.Tensor]:
    """One ``[3, H, W]`` image per ``(embedding [L, D], seed)`` request, in order, generated in full
    batches that may span several prompts; requests are drawn lazily, so memory is bounded by one batch.
    ``sampler`` holds ``generate_images``' sampling arguments. An image equals the one ``generate_images``
    makes from the same embedding and seed (each latent has its own seed)."""
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
    requests = iter(requests)
    while batch := list(islice(requests, batch_size)):
        embeddings = torch.stack([embedding for embedding, _ in batch])
        seeds = [seed for _, seed in batch]
        images = generate_images(pipeline, embeddings, empty_embedding, seeds=seeds, batch_size=batch_size, **sampler)
        if progress:
            progress(len(batch))
        yield from images
