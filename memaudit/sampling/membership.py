"""The UNet calls of the PIA membership attack (formulas in ``memaudit.metrics.membership``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.metrics.membership import pia_scores, proximal_latents
from memaudit.metrics.parameterization import as_epsilon


@torch.no_grad()
def membership_scores(
    pipeline,
    latents: torch.Tensor,
    embeddings: torch.Tensor,
    *,
    timestep: int,
    p: float,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[N]`` PIA scores of images (scaled VAE latents) with their own captions' embeddings.

    Timesteps index the model's training schedule (``scheduler.alphas_cumprod``), where t = 0 is the
    least noisy; no scheduler state is involved, so scores do not depend on the sampler or the batch.
    Outputs are read as noise whatever the UNet predicts (``metrics.parameterization``).
    """
    unet, alphas = pipeline.unet, pipeline.scheduler.alphas_cumprod
    if not 0 < timestep < len(alphas):
        raise ValueError(f"`timestep` must be in 1..{len(alphas) - 1}, got {timestep}")
    if latents.shape[0] != embeddings.shape[0]:
        raise ValueError(f"{latents.shape[0]} latents but {embeddings.shape[0]} caption embeddings")
    device, dtype = unet.device, unet.dtype
    alpha, alpha_zero = float(alphas[timestep]), float(alphas[0])
    prediction_type = pipeline.scheduler.config.get("prediction_type", "epsilon")
    scores = []
    for start in range(0, latents.shape[0], batch_size):
        x0 = latents[start : start + batch_size].to(device, dtype)
        cond = embeddings[start : start + batch_size].to(device, dtype)
        output = unet(x0, 0, encoder_hidden_states=cond).sample
        eps_zero = as_epsilon(output, x0, alpha_bar=alpha_zero, prediction_type=prediction_type)
        noisy = proximal_latents(x0, eps_zero, alpha)
        output = unet(noisy, timestep, encoder_hidden_states=cond).sample
        eps_t = as_epsilon(output, noisy, alpha_bar=alpha, prediction_type=prediction_type)
        scores.append(pia_scores(eps_zero, eps_t, p=p).cpu())
        if progress:
            progress(x0.shape[0])
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)
