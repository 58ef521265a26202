"""Embedding perturbations for the re-trigger check: seeded, scaled to the embedding, bounded."""

from __future__ import annotations

import pytest
import torch

from memaudit.sampling.denoise import predict_noise
from memaudit.sampling.retrigger import ascent_perturbation, gaussian_perturbation
from memaudit.sampling.scheduler import make_scheduler
from memaudit.sampling.seeds import initial_latents
from memaudit.sampling.text import encode_prompts


def _rms(tensor: torch.Tensor) -> float:
    return float(tensor.double().pow(2).mean().sqrt())


def test_gaussian_perturbation_is_seeded_and_scaled_to_the_embedding(tiny_pipeline):
    embedding = encode_prompts(tiny_pipeline, ["small left effusion"])
    assert torch.equal(gaussian_perturbation(embedding, scale=0.0, seed=1).tokens, embedding.tokens)
    first = gaussian_perturbation(embedding, scale=0.1, seed=1)
    assert torch.equal(first.tokens, gaussian_perturbation(embedding, scale=0.1, seed=1).tokens)
    assert not torch.equal(first.tokens, gaussian_perturbation(embedding, scale=0.1, seed=2).tokens)
    assert _rms(first.tokens - embedding.tokens) == pytest.approx(0.1 * _rms(embedding.tokens), rel=0.1)
    with pytest.raises(ValueError, match="non-negative"):
        gaussian_perturbation(embedding, scale=-1.0, seed=1)


def test_gradient_ascent_stays_in_its_budget_raises_the_signal_and_leaves_the_weights(tiny_pipeline):
    unet = tiny_pipeline.unet
    embedding = encode_prompts(tiny_pipeline, ["cardiomegaly with edema"])
    empty = encode_prompts(tiny_pipeline, [""])
    flags = [p.requires_grad for p in unet.parameters()]
    weights = [p.detach().clone() for p in unet.parameters()]
    common = dict(seeds=[1, 2], latent_size=8, num_inference_steps=10)
    moved = ascent_perturbation(tiny_pipeline, embedding, empty, radius=0.2, steps=3, **common)
    assert _rms(moved.tokens - embedding.tokens) <= 0.2 * _rms(embedding.tokens) * (1 + 1e-5)
    assert _rms(moved.tokens - embedding.tokens) > 0
    unmoved = ascent_perturbation(tiny_pipeline, embedding, empty, radius=0.0, steps=3, **common)
    assert torch.equal(unmoved.tokens, embedding.tokens)
    assert [p.requires_grad for p in unet.parameters()] == flags
    assert all(torch.equal(p, w) for p, w in zip(unet.parameters(), weights, strict=True))

    def signal(e):  # the mean first-step noise difference on the ascent's own seeds
        sampler = make_scheduler(tiny_pipeline, "ddim", 10)
        latents = initial_latents((unet.config.in_channels, 8, 8), [1, 2]) * sampler.init_noise_sigma
        with torch.no_grad():
            cond, uncond = predict_noise(
                tiny_pipeline, sampler, latents, timestep=sampler.timesteps[0], cond=e.repeat(2), uncond=empty
            )
        return float((cond - uncond).flatten(1).norm(dim=1).mean())

    assert signal(moved) > signal(embedding)
