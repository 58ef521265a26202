"""The network calls of the PIA membership attack (formulas in ``memaudit.metrics.membership``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.denoiser import Conditioning, denoiser_for
from memaudit.metrics.membership import pia_scores


@torch.no_grad()
def membership_scores(
    model,
    latents: torch.Tensor,
    embeddings: Conditioning,
    *,
    timestep: int,
    p: float,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[N]`` PIA scores of images (scaled latents) with their own captions' conditioning.

    Timesteps index the model's training schedule (t = 0 is the least noisy; for rectified flow the
    noise level is t / num_train_timesteps); no sampler state is involved, so scores do not depend on
    the sampler or the batch. Outputs are read as noise whatever the network predicts. The proximal
    re-noising is the training forward process with the model's own t = 0 noise in place of a draw.
    """
    denoiser = denoiser_for(model)
    steps = denoiser.levels.num_train_timesteps
    if not 0 < timestep < steps:
        raise ValueError(f"`timestep` must be in 1..{steps - 1}, got {timestep}")
    if latents.shape[0] != len(embeddings):
        raise ValueError(f"{latents.shape[0]} latents but {len(embeddings)} caption embeddings")
    device, dtype = denoiser.device, denoiser.dtype
    scores = []
    for start in range(0, latents.shape[0], batch_size):
        x0 = latents[start : start + batch_size].to(device, dtype)
        cond = embeddings[start : start + batch_size].to(device, dtype)
        eps_zero = denoiser.epsilon_at(denoiser.forward(x0, 0, cond), x0, 0)
        noisy = denoiser.add_noise(x0, eps_zero, timestep)
        eps_t = denoiser.epsilon_at(denoiser.forward(noisy, timestep, cond), noisy, timestep)
        scores.append(pia_scores(eps_zero, eps_t, p=p).cpu())
        if progress:
            progress(x0.shape[0])
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)
