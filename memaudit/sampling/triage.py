"""Triage scores per prompt from the registered detectors (formulas in ``memaudit.metrics.triage``).

Every detector starts from the same seeded latents as the noise-magnitude probe (sample k of the
stream is the same noise whatever the batch), so detectors can be compared prompt by prompt. Batches
hold whole prompts (all G generations of each), because seed consistency compares a prompt's seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from memaudit.denoiser import Conditioning, Denoiser, denoiser_for
from memaudit.metrics.noise_magnitude import step_magnitude
from memaudit.metrics.triage import DETECTORS, channel_cosine, seed_consistency, sharpness, token_entropy
from memaudit.sampling.attention import recording
from memaudit.sampling.probe import noise_magnitude_scores
from memaudit.sampling.seeds import initial_latents, sample_seed

ASTHANA_COSINE_WEIGHT = 2.0  # the paper's weight for Stable Diffusion 1.x (norm weight 1)


def triage_scores(
    model,
    prompt_embeddings: Conditioning,
    empty_embedding: Conditioning,
    *,
    detector: str,
    generations: int,
    steps: int,
    num_inference_steps: int,
    guidance_scale: float,
    latent_size: int,
    seed: int,
    scheduler: str = "ddim",
    batch_size: int = 8,
    first_prompt: int = 0,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[P]`` float64 scores of ``detector`` (higher: more likely memorized). The embeddings are prompts
    ``first_prompt`` onwards of a longer list (seeds follow the position in that list), so a long list
    scored in chunks gets the scores it would get whole."""
    spec = DETECTORS.get(detector)
    if spec is None:
        raise ValueError(f"unknown triage detector '{detector}'; available: {', '.join(DETECTORS)}")
    if generations < spec.min_generations:
        raise ValueError(f"detector '{detector}' needs at least {spec.min_generations} generations, got {generations}")
    common = dict(generations=generations, num_inference_steps=num_inference_steps, latent_size=latent_size, seed=seed)
    common |= dict(scheduler=scheduler, batch_size=batch_size, first_prompt=first_prompt, progress=progress)
    if detector == "wen":
        return noise_magnitude_scores(
            model, prompt_embeddings, empty_embedding, steps=steps, guidance_scale=guidance_scale, **common
        )
    return _first_step_scores(denoiser_for(model), prompt_embeddings, empty_embedding, detector=detector, **common)


@torch.no_grad()
def _first_step_scores(
    denoiser: Denoiser,
    prompt_embeddings: Conditioning,
    empty_embedding: Conditioning,
    *,
    detector: str,
    generations: int,
    num_inference_steps: int,
    latent_size: int,
    seed: int,
    scheduler: str,
    batch_size: int,
    first_prompt: int,
    progress: Callable[[int], None] | None,
) -> torch.Tensor:
    prompts = len(prompt_embeddings)
    shape = denoiser.latent_shape(latent_size)
    per_batch = max(1, batch_size // generations)
    scores = torch.zeros(prompts, dtype=torch.float64)
    uncond = empty_embedding
    for first in range(0, prompts, per_batch):
        chosen = list(range(first, min(first + per_batch, prompts)))
        items = [p * generations + g for p in chosen for g in range(generations)]
        sampler = denoiser.make_sampler(scheduler, num_inference_steps, latent_side=latent_size)
        start = sampler.timesteps[0]
        seeds = [sample_seed(seed, "noise-probe", first_prompt * generations + item) for item in items]
        latents = denoiser.start_latents(sampler, initial_latents(shape, seeds))
        cond = prompt_embeddings[[item // generations for item in items]]
        if detector == "attention":
            with recording(denoiser.module) as recorder:
                denoiser.output(sampler, latents, timestep=start, cond=cond)
            item_scores = torch.stack([token_entropy(layer) for layer in recorder.layers]).mean(dim=0)
        elif detector == "jeon":
            item_scores = _sharpness_scores(denoiser, sampler, latents, timestep=start, cond=cond, uncond=uncond).cpu()
        else:
            eps_cond, eps_uncond = denoiser.predict_noise(sampler, latents, timestep=start, cond=cond, uncond=uncond)
            if detector == "consistency":
                difference = (eps_cond - eps_uncond).cpu().view(len(chosen), generations, *shape)
                scores[chosen] = seed_consistency(difference)
                _advance(progress, len(items))
                continue
            low = sampler.timesteps[-3] if len(sampler.timesteps) >= 3 else sampler.timesteps[-1]
            low_cond, low_uncond = denoiser.predict_noise(sampler, latents, timestep=low, cond=cond, uncond=uncond)
            item_scores = (
                step_magnitude(eps_cond, eps_uncond).cpu()
                + ASTHANA_COSINE_WEIGHT * channel_cosine(low_uncond, low_cond - low_uncond).cpu()
            )
        scores[chosen] = item_scores.view(len(chosen), generations).mean(dim=1)
        _advance(progress, len(items))
    return scores


def _sharpness_scores(denoiser: Denoiser, sampler, latents, *, timestep, cond: Conditioning, uncond: Conditioning):
    """Jeon et al.'s score per latent: the cond/uncond noise at ``timestep``, then one forward-mode
    Jacobian-vector product of the same network batch along ``v = eps_c - eps_u`` (scores and Hessians
    of the log-density follow from ``s = -eps / sigma``, see ``metrics.triage.sharpness``)."""
    eps_cond, eps_uncond = denoiser.predict_noise(sampler, latents, timestep=timestep, cond=cond, uncond=uncond)
    model_input = denoiser.scale_input(sampler, torch.cat([latents, latents]), timestep)
    context = Conditioning.cat([cond, uncond.broadcast(len(cond))]).to(denoiser.device, denoiser.dtype)
    direction = eps_cond - eps_uncond
    # Forward-mode AD has no rule for the fused attention kernels; the math kernel computes the same.
    # The Jacobian is the noise's: a velocity or x0 output is converted inside the differentiated map.

    convert = denoiser.levels.converter(sampler, timestep)

    def noise(x: torch.Tensor) -> torch.Tensor:
        return convert(denoiser.forward(x, timestep, context), x)

    with sdpa_kernel(SDPBackend.MATH):
        _, tangent = torch.func.jvp(noise, (model_input,), (torch.cat([direction, direction]),))
    tangent_cond, tangent_uncond = tangent.chunk(2)
    return sharpness(tangent_cond - tangent_uncond, denoiser.levels.noise_scale(sampler, timestep))


def _advance(progress: Callable[[int], None] | None, count: int) -> None:
    if progress:
        progress(count)
