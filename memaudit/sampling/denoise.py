"""One classifier-free-guided denoising step, for a pipeline or denoiser of any family.

``model_outputs`` gives what the network predicts in the parameterization its sampler steps with;
``predict_noise`` gives the same outputs as noise (``denoiser.noise_levels``), which is what every score
is defined on. Both take cond and uncond through one forward pass over 2B samples.
"""

from __future__ import annotations

import torch

from memaudit.denoiser import Conditioning, denoiser_for


def model_outputs(model, sampler, latents: torch.Tensor, *, timestep, cond: Conditioning, uncond: Conditioning):
    """(conditional, unconditional) network outputs for a batch."""
    return denoiser_for(model).outputs(sampler, latents, timestep=timestep, cond=cond, uncond=uncond)


def predict_noise(model, sampler, latents: torch.Tensor, *, timestep, cond: Conditioning, uncond: Conditioning):
    """(eps_conditional, eps_unconditional) for a batch, whatever the network was trained to predict."""
    return denoiser_for(model).predict_noise(sampler, latents, timestep=timestep, cond=cond, uncond=uncond)


def latent_side(model, resolution: int | None) -> int:
    """Latent height/width for an image side in pixels (default: the model's own sample size)."""
    return denoiser_for(model).latent_side(resolution)
