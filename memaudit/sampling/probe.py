"""The noise-magnitude probe: first-S-step text-conditional noise of G seeded generations per prompt.

Prompt-generation pairs are batched together; each pair's starting latent comes from its own seed,
so scores do not depend on the batch size. No image is decoded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.denoiser import Conditioning, denoiser_for
from memaudit.metrics.noise_magnitude import step_magnitude
from memaudit.sampling.seeds import initial_latents, sample_seed


@torch.no_grad()
def noise_magnitude_scores(
    model,
    prompt_embeddings: Conditioning,
    empty_embedding: Conditioning,
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
    denoiser = denoiser_for(model)
    prompts = len(prompt_embeddings)
    shape = denoiser.latent_shape(latent_size)
    totals = torch.zeros(prompts * generations, dtype=torch.float64)
    for start in range(0, prompts * generations, batch_size):
        items = list(range(start, min(start + batch_size, prompts * generations)))
        sampler = denoiser.make_sampler(scheduler, num_inference_steps, latent_side=latent_size)
        seeds = [sample_seed(seed, stream, first_prompt * generations + item) for item in items]
        latents = denoiser.start_latents(sampler, initial_latents(shape, seeds))
        cond = prompt_embeddings[[item // generations for item in items]]
        for step, timestep in enumerate(sampler.timesteps[:steps]):
            out_cond, out_uncond = denoiser.outputs(
                sampler, latents, timestep=timestep, cond=cond, uncond=empty_embedding
            )
            eps_cond, eps_uncond = (
                denoiser.epsilon(sampler, out, latents=latents, timestep=timestep) for out in (out_cond, out_uncond)
            )
            totals[items] += step_magnitude(eps_cond, eps_uncond).cpu()
            if step + 1 < steps:  # the sampler steps with the network's own parameterization
                output = denoiser.mix(out_cond, out_uncond, scale=guidance_scale)
                latents = sampler.step(output, timestep, latents).prev_sample
        if progress:
            progress(len(items))
    return (totals / steps).view(prompts, generations).mean(dim=1)
