"""Embedding perturbations that may bring a hidden copy back (Kowalczuk, Hintersdorf et al., "Finding
Dori", 2026): Gaussian noise at several scales, and a few steps of gradient ascent on the first-step
text-conditional noise difference, Wen et al.'s memorization signal.

Scales are relative to the embedding's root-mean-square value, so they mean the same for any text
encoder. Every draw is seeded.
"""

from __future__ import annotations

import torch

from memaudit.sampling.denoise import predict_noise
from memaudit.sampling.scheduler import make_scheduler
from memaudit.sampling.seeds import initial_latents, sample_seed


def _rms(embedding: torch.Tensor) -> torch.Tensor:
    return embedding.double().pow(2).mean().sqrt().to(embedding.dtype)


def gaussian_perturbation(embedding: torch.Tensor, *, scale: float, seed: int) -> torch.Tensor:
    """``embedding + scale * rms(embedding) * N(0, I)``, drawn from ``seed``."""
    if scale < 0:
        raise ValueError(f"`scale` must be non-negative, got {scale}")
    noise = torch.randn(embedding.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    return embedding + scale * _rms(embedding) * noise.to(embedding.dtype)


def ascent_perturbation(
    pipeline,
    embedding: torch.Tensor,
    empty_embedding: torch.Tensor,
    *,
    radius: float,
    steps: int,
    seeds: list[int],
    latent_size: int,
    num_inference_steps: int,
    scheduler: str = "ddim",
) -> torch.Tensor:
    """``embedding + delta`` with ||delta||_rms <= radius * rms(embedding), after ``steps`` signed-gradient
    steps that raise the mean first-step noise difference over ``seeds`` (the UNet's weights are untouched)."""
    if radius < 0 or steps < 0:
        raise ValueError(f"`radius` and `steps` must be non-negative, got {radius} and {steps}")
    unet = pipeline.unet
    device, dtype = unet.device, unet.dtype
    sampler = make_scheduler(pipeline, scheduler, num_inference_steps)
    start = sampler.timesteps[0]
    shape = (unet.config.in_channels, latent_size, latent_size)
    latents = initial_latents(shape, seeds, dtype=dtype).to(device) * sampler.init_noise_sigma
    base = embedding.to(device, dtype).expand(len(seeds), -1, -1)
    uncond = empty_embedding.to(device, dtype)
    limit = float(radius * _rms(embedding))
    delta = torch.zeros_like(embedding, device=device, dtype=dtype)
    flags = [p.requires_grad for p in unet.parameters()]
    for parameter in unet.parameters():
        parameter.requires_grad_(False)
    try:
        for _ in range(steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                eps_cond, eps_uncond = predict_noise(
                    unet, sampler, latents, timestep=start, cond=base + delta, uncond=uncond
                )
                magnitude = (eps_cond - eps_uncond).flatten(1).norm(dim=1).mean()
                gradient = None
                if magnitude.requires_grad:  # a model whose output ignores the embedding has no gradient
                    (gradient,) = torch.autograd.grad(magnitude, delta, allow_unused=True)
                gradient = torch.zeros_like(delta) if gradient is None else gradient
            with torch.no_grad():
                delta = delta + (limit / max(steps, 1)) * gradient.sign()
                norm = float(delta.double().pow(2).mean().sqrt())
                if norm > limit > 0:
                    delta = delta * (limit / norm)
    finally:
        for parameter, flag in zip(unet.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
    return (embedding.to(device, dtype) + delta.detach()).cpu()


def relative_shift(moved: torch.Tensor, embedding: torch.Tensor) -> float:
    """rms(moved - embedding) / rms(embedding): how far a perturbation moved the prompt, in its own units."""
    return float((moved - embedding).double().pow(2).mean().sqrt() / embedding.double().pow(2).mean().sqrt())


def perturbation_seed(seed: int, prompt_index: int, attempt: int) -> int:
    return sample_seed(seed, "retrigger-perturbation", prompt_index * 1000 + attempt)
