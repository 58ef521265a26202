"""One classifier-free-guided denoising step with cond and uncond in a single UNet forward."""

from __future__ import annotations

import torch


def predict_noise(unet, scheduler, latents: torch.Tensor, *, timestep, cond: torch.Tensor, uncond: torch.Tensor):
    """(eps_conditional, eps_unconditional) for a batch, from one forward pass over 2B samples."""
    model_input = scheduler.scale_model_input(torch.cat([latents, latents]), timestep)
    context = torch.cat([cond, uncond.expand(cond.shape[0], -1, -1)])
    noise = unet(model_input, timestep, encoder_hidden_states=context).sample
    return noise.chunk(2)


def guided(eps_conditional: torch.Tensor, eps_unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    return eps_unconditional + scale * (eps_conditional - eps_unconditional)


def latent_side(pipeline, resolution: int | None) -> int:
    """Latent height/width for an image side in pixels (default: the UNet's own sample size)."""
    factor = 2 ** (len(pipeline.vae.config.block_out_channels) - 1)
    if resolution is None:
        return int(pipeline.unet.config.sample_size)
    if resolution % factor:
        raise ValueError(f"resolution {resolution} is not a multiple of the VAE factor {factor}")
    return resolution // factor
