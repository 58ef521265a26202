"""The network calls of the PIA membership attack (formulas in ``memaudit.metrics.membership``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.denoiser import Conditioning, denoiser_for
from memaudit.metrics.membership import pia_scores, squared_errors


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


def _coefficients(denoiser, timestep: int, like: torch.Tensor) -> tuple[float, float]:
    """(a, b) of the family's forward process x_t = a x0 + b e at ``timestep`` (DDPM: sqrt(alpha_bar),
    sqrt(1 - alpha_bar); rectified flow: 1 - s, s), read from its own ``add_noise``, which is linear."""
    one, zero = torch.ones_like(like[:1]), torch.zeros_like(like[:1])
    a = float(denoiser.add_noise(one, zero, timestep).flatten()[0])
    b = float(denoiser.add_noise(zero, one, timestep).flatten()[0])
    return a, b


def _ddim_move(denoiser, x: torch.Tensor, eps: torch.Tensor, *, start: int, end: int) -> torch.Tensor:
    """A deterministic (DDIM) move of ``x`` from ``start`` to ``end`` along the predicted noise ``eps``."""
    a_start, b_start = _coefficients(denoiser, start, x)
    a_end, b_end = _coefficients(denoiser, end, x)
    return a_end * (x - b_start * eps) / a_start + b_end * eps


def _noise(denoiser, x, *, timestep: int, cond: Conditioning) -> torch.Tensor:
    return denoiser.epsilon_at(denoiser.forward(x, timestep, cond), x, timestep)


@torch.no_grad()
def secmi_scores(
    model,
    latents: torch.Tensor,
    embeddings: Conditioning,
    *,
    timestep: int,
    interval: int = 10,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[N]`` SecMI scores: minus the t-error of each latent with its caption (``metrics.membership``).
    ``timestep`` must be a multiple of ``interval``; timestep / interval + 2 evaluations per latent."""
    denoiser = denoiser_for(model)
    steps = denoiser.levels.num_train_timesteps
    if interval < 1 or timestep % interval or not 0 < timestep < steps - interval:
        raise ValueError(
            f"`timestep` ({timestep}) must be a multiple of `interval` ({interval}) below {steps - interval}"
        )
    _check_counts(latents, embeddings)
    scores = []
    for start in range(0, latents.shape[0], batch_size):
        x = latents[start : start + batch_size].to(denoiser.device, denoiser.dtype)
        cond = embeddings[start : start + batch_size].to(denoiser.device, denoiser.dtype)
        for t in range(0, timestep, interval):  # deterministic inversion x0 -> x_t
            x = _ddim_move(denoiser, x, _noise(denoiser, x, timestep=t, cond=cond), start=t, end=t + interval)
        later = timestep + interval
        ahead = _ddim_move(denoiser, x, _noise(denoiser, x, timestep=timestep, cond=cond), start=timestep, end=later)
        back = _ddim_move(
            denoiser, ahead, _noise(denoiser, ahead, timestep=later, cond=cond), start=later, end=timestep
        )
        scores.append(-squared_errors(x, back).cpu())
        if progress:
            progress(x.shape[0])
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)


@torch.no_grad()
def loss_scores(
    model,
    latents: torch.Tensor,
    embeddings: Conditioning,
    *,
    timestep: int,
    seeds: list[int],
    draws: int = 4,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``[N]`` loss-attack scores: minus the mean over ``draws`` noises of the denoising loss at
    ``timestep``; latent i's draw k is ``torch.randn`` from ``sample_seed(seeds[i], "membership-loss", k)``,
    so a score depends on its study's seed alone, never on the batch."""
    denoiser = denoiser_for(model)
    steps = denoiser.levels.num_train_timesteps
    if not 0 < timestep < steps:
        raise ValueError(f"`timestep` must be in 1..{steps - 1}, got {timestep}")
    if len(seeds) != latents.shape[0] or draws < 1:
        raise ValueError(f"need one seed per latent ({len(seeds)} for {latents.shape[0]}) and draws >= 1 ({draws})")
    _check_counts(latents, embeddings)
    scores = []
    for start in range(0, latents.shape[0], batch_size):
        x0 = latents[start : start + batch_size].to(denoiser.device, denoiser.dtype)
        cond = embeddings[start : start + batch_size].to(denoiser.device, denoiser.dtype)
        total = torch.zeros(x0.shape[0], dtype=torch.float64)
        for draw in range(draws):
            noise = torch.stack([_draw(seed, draw, x0.shape[1:]) for seed in seeds[start : start + batch_size]])
            noise = noise.to(x0.device, x0.dtype)
            noisy = denoiser.add_noise(x0, noise, timestep)
            total += squared_errors(_noise(denoiser, noisy, timestep=timestep, cond=cond), noise).cpu()
        scores.append(-total / draws)
        if progress:
            progress(x0.shape[0])
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)


def _draw(seed: int, draw: int, shape) -> torch.Tensor:
    from memaudit.sampling.seeds import sample_seed

    return torch.randn(
        tuple(shape), generator=torch.Generator().manual_seed(sample_seed(seed, "membership-loss", draw))
    )


def _check_counts(latents: torch.Tensor, embeddings: Conditioning) -> None:
    if latents.shape[0] != len(embeddings):
        raise ValueError(f"{latents.shape[0]} latents but {len(embeddings)} caption embeddings")
