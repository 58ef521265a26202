"""The sampler a policy asks for, built from the checkpoint's own noise schedule."""

from __future__ import annotations

from memaudit.denoiser import denoiser_for


def make_scheduler(model, kind: str, num_inference_steps: int, *, latent_side: int | None = None):
    """A fresh scheduler with its timesteps set: ``ddim`` (the family's deterministic sampler) or the
    checkpoint's own class. ``latent_side`` matters where the family shifts its schedule by image size."""
    denoiser = denoiser_for(model)
    side = denoiser.default_latent_side if latent_side is None else latent_side
    return denoiser.make_sampler(kind, num_inference_steps, latent_side=side)
