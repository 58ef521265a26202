"""The noise-magnitude probe: first-S-step text-conditional noise of G seeded generations per prompt.

Prompt-generation pairs are batched together; each pair's starting latent comes from its own seed,
so scores do not depend on the batch size. No image is decoded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.metrics.noise_magnitude import step_magnitude
from memaudit.sampling.denoise import epsilon_of, guided, model_outputs
from memaudit.sampling.scheduler import make_scheduler
from memaudit.sampling.seeds import initial_latents, sample_seed


@torch.no_grad()
def noise_magnitude_scores(
    pipeline,
    prompt_embeddings: torch.Tensor,
    empty_embedding: torch.Tensor,
    *,
    generations: int,
    steps: int,
    num_inference_steps: int,
    guidance_scale: float,
    latent_size: int,
    seed: int,
    scheduler: str = "ddim",
    batch_size: int = 8,
    stream: str = "noise-probe",
    first_prompt: int = 0,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[P]`` float64 scores: mean over generations and the first ``steps`` steps of the magnitude.
    Seeds follow the prompt's position ``first_prompt + p`` in the full list (see ``triage_scores``)."""
    if steps < 1 or steps > num_inference_steps:
        raise ValueError(f"`steps` must be between 1 and num_inference_steps={num_inference_steps}, got {steps}")
    if generations < 1:
        raise ValueError(f"`generations` must be at least 1, got {generations}")
    unet = pipeline.unet
    device, dtype = unet.device, unet.dtype
    prompts = prompt_embeddings.shape[0]
    shape = (unet.config.in_channels, latent_size, latent_size)
    totals = torch.zeros(prompts * generations, dtype=torch.float64)
    for start in range(0, prompts * generations, batch_size):
        items = list(range(start, min(start + batch_size, prompts * generations)))
        sampler = make_scheduler(pipeline, scheduler, num_inference_steps)
        seeds = [sample_seed(seed, stream, first_prompt * generations + item) for item in items]
        latents = initial_latents(shape, seeds, dtype=dtype).to(device) * sampler.init_noise_sigma
        cond = prompt_embeddings[[item // generations for item in items]].to(device, dtype)
        for step, timestep in enumerate(sampler.timesteps[:steps]):
            out_cond, out_uncond = model_outputs(
                unet, sampler, latents, timestep=timestep, cond=cond, uncond=empty_embedding.to(device, dtype)
            )
            eps_cond, eps_uncond = (
                epsilon_of(sampler, out, latents=latents, timestep=timestep) for out in (out_cond, out_uncond)
            )
            totals[items] += step_magnitude(eps_cond, eps_uncond).cpu()
            if step + 1 < steps:  # the sampler steps with the UNet's own parameterization
                latents = sampler.step(guided(out_cond, out_uncond, guidance_scale), timestep, latents).prev_sample
        if progress:
            progress(len(items))
    return (totals / steps).view(prompts, generations).mean(dim=1)
