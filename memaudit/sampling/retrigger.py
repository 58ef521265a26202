"""Embedding perturbations that may bring a hidden copy back (Kowalczuk, Hintersdorf et al., "Finding
Dori", 2026): Gaussian noise at several scales, and a few steps of gradient ascent on the first-step
text-conditional noise difference, Wen et al.'s memorization signal.

Scales are relative to the embedding's root-mean-square value, so they mean the same for any text
encoder. Every draw is seeded.
"""

from __future__ import annotations

import torch

from memaudit.denoiser import Conditioning, denoiser_for
from memaudit.sampling.seeds import initial_latents, sample_seed


def _rms(embedding: torch.Tensor) -> torch.Tensor:
    return embedding.double().pow(2).mean().sqrt().to(embedding.dtype)


def gaussian_perturbation(embedding: Conditioning, *, scale: float, seed: int) -> Conditioning:
    """``x + scale * rms(x) * N(0, I)`` for each float field x of the conditioning (the token states, and
    the pooled embedding where the family has one), drawn from ``seed``."""
    if scale < 0:
        raise ValueError(f"`scale` must be non-negative, got {scale}")
    generator = torch.Generator().manual_seed(seed)

    def moved(field: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(field.shape, generator=generator, dtype=torch.float32)
        return field + scale * _rms(field) * noise.to(field.dtype)

    return embedding.map_float(moved)


def ascent_perturbation(
    model,
    embedding: Conditioning,
    empty_embedding: Conditioning,
    *,
    radius: float,
    steps: int,
    seeds: list[int],
    latent_size: int,
    num_inference_steps: int,
    scheduler: str = "ddim",
) -> Conditioning:
    """The conditioning moved by ``steps`` signed-gradient steps that raise the mean first-step noise
    difference over ``seeds``; each float field x moves by delta with ||delta||_rms <= radius * rms(x)
    (the network's weights are untouched)."""
    if radius < 0 or steps < 0:
        raise ValueError(f"`radius` and `steps` must be non-negative, got {radius} and {steps}")
    denoiser = denoiser_for(model)
    device, dtype = denoiser.device, denoiser.dtype
    sampler = denoiser.make_sampler(scheduler, num_inference_steps, latent_side=latent_size)
    start = sampler.timesteps[0]
    latents = denoiser.start_latents(sampler, initial_latents(denoiser.latent_shape(latent_size), seeds))
    fields = [field.to(device, dtype) for field in embedding.float_fields()]
    limits = [float(radius * _rms(field)) for field in fields]
    deltas = [torch.zeros_like(field) for field in fields]
    module = denoiser.module
    flags = [p.requires_grad for p in module.parameters()]
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    try:
        for _ in range(steps):
            for delta in deltas:
                delta.requires_grad_(True)
            with torch.enable_grad():
                moved = embedding.to(device, dtype).with_float_fields(
                    [f + d for f, d in zip(fields, deltas, strict=True)]
                )
                eps_cond, eps_uncond = denoiser.predict_noise(
                    sampler, latents, timestep=start, cond=moved.repeat(len(seeds)), uncond=empty_embedding
                )
                magnitude = (eps_cond - eps_uncond).flatten(1).norm(dim=1).mean()
                gradients = [None] * len(deltas)
                if magnitude.requires_grad:  # a model whose output ignores the embedding has no gradient
                    gradients = torch.autograd.grad(magnitude, deltas, allow_unused=True)
            with torch.no_grad():
                deltas = [
                    _signed_step(delta, gradient, limit=limit, steps=steps)
                    for delta, gradient, limit in zip(deltas, gradients, limits, strict=True)
                ]
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
    moved = [field + delta.detach() for field, delta in zip(fields, deltas, strict=True)]
    return embedding.to(device, dtype).with_float_fields(moved).to("cpu")


def _signed_step(delta: torch.Tensor, gradient: torch.Tensor | None, *, limit: float, steps: int) -> torch.Tensor:
    """One signed-gradient step of ``limit / steps``, projected back onto the rms ball of ``limit``."""
    gradient = torch.zeros_like(delta) if gradient is None else gradient
    delta = delta.detach() + (limit / max(steps, 1)) * gradient.sign()
    norm = float(delta.double().pow(2).mean().sqrt())
    return delta * (limit / norm) if norm > limit > 0 else delta


def relative_shift(moved: Conditioning, embedding: Conditioning) -> float:
    """rms(moved - x) / rms(x) of the token states: how far a perturbation moved the prompt, in its own units."""
    return float(
        (moved.tokens - embedding.tokens).double().pow(2).mean().sqrt() / embedding.tokens.double().pow(2).mean().sqrt()
    )


def perturbation_seed(seed: int, prompt_index: int, attempt: int) -> int:
    return sample_seed(seed, "retrigger-perturbation", prompt_index * 1000 + attempt)
