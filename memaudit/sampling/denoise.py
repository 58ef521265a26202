"""One classifier-free-guided denoising step with cond and uncond in a single UNet forward.

``model_outputs`` gives what the UNet predicts in its own parameterization, which is what the sampler
steps with; ``predict_noise`` gives the same outputs as noise (``metrics.parameterization``), which is
what every score is defined on.
"""

from __future__ import annotations

import numpy as np
import torch

from memaudit.metrics.parameterization import as_epsilon


def model_outputs(unet, scheduler, latents: torch.Tensor, *, timestep, cond: torch.Tensor, uncond: torch.Tensor):
    """(conditional, unconditional) UNet outputs for a batch, from one forward pass over 2B samples."""
    model_input = scheduler.scale_model_input(torch.cat([latents, latents]), timestep)
    context = torch.cat([cond, uncond.expand(cond.shape[0], -1, -1)])
    return unet(model_input, timestep, encoder_hidden_states=context).sample.chunk(2)


def predict_noise(unet, scheduler, latents: torch.Tensor, *, timestep, cond: torch.Tensor, uncond: torch.Tensor):
    """(eps_conditional, eps_unconditional) for a batch, whatever the UNet was trained to predict."""
    outputs = model_outputs(unet, scheduler, latents, timestep=timestep, cond=cond, uncond=uncond)
    return tuple(epsilon_of(scheduler, output, latents=latents, timestep=timestep) for output in outputs)


def epsilon_of(scheduler, output: torch.Tensor, *, latents: torch.Tensor, timestep) -> torch.Tensor:
    """The noise a UNet ``output`` at ``timestep`` stands for; the UNet's input (the sampler's scaled
    ``latents``) is the variance-preserving noisy sample for DDIM and sigma-based samplers alike."""
    prediction_type = scheduler.config.get("prediction_type", "epsilon")
    if prediction_type == "epsilon":
        return output
    noisy = scheduler.scale_model_input(latents, timestep)
    return as_epsilon(output, noisy, alpha_bar=alpha_bar_at(scheduler, timestep), prediction_type=prediction_type)


def alpha_bar_at(scheduler, timestep) -> float:
    """Cumulative alpha at ``timestep``, the noise level the UNet is told, as the sampler defines it:
    from its sigma for that timestep (Euler, LMS, DPM-Solver: a = 1 / (1 + sigma^2), exact for their
    fractional and Karras timesteps), or from the training schedule (DDIM, PNDM)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and hasattr(scheduler, "index_for_timestep"):
        return 1.0 / (1.0 + float(sigmas[scheduler.index_for_timestep(timestep)]) ** 2)
    alphas = scheduler.alphas_cumprod.detach().cpu().double().numpy()
    return float(np.interp(float(timestep), np.arange(len(alphas)), alphas))


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
