"""The two objectives of a trial, both minimised: memorization (mean noise magnitude over D_mem's
captions) and quality (FID of generated against real holdout images, on the policy's extractor)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memaudit.features import FeatureExtractor, extract_features
from memaudit.metrics.fid import frechet_distance
from memaudit.policy import Policy
from memaudit.sampling.denoise import latent_side
from memaudit.sampling.generate import generate_images
from memaudit.sampling.probe import noise_magnitude_scores
from memaudit.sampling.seeds import sample_seed
from memaudit.sampling.text import encode_prompts


@dataclass(frozen=True)
class ObjectiveInputs:
    memorization_captions: list[str]
    holdout_captions: list[str]  # the captions generated for FID (a seeded sample of the holdout set)
    holdout_features: torch.Tensor  # real holdout features, all of them
    extractor: FeatureExtractor
    image_side: int


@torch.no_grad()
def evaluate(pipeline, inputs: ObjectiveInputs, policy: Policy) -> tuple[float, float]:
    """(memorization, fid) of the pipeline as it is now."""
    sampling, noise = policy.sampling, policy.checks.noise_magnitude
    side = latent_side(pipeline, sampling.resolution)
    empty = encode_prompts(pipeline, [""])
    scores = noise_magnitude_scores(
        pipeline,
        encode_prompts(pipeline, inputs.memorization_captions),
        empty,
        generations=noise.generations,
        steps=noise.steps,
        num_inference_steps=sampling.num_inference_steps,
        guidance_scale=sampling.guidance_scale,
        latent_size=side,
        seed=sampling.seed,
        scheduler=sampling.scheduler,
        batch_size=sampling.batch_size,
    )
    seeds = [sample_seed(sampling.seed, "remediation-fid", k) for k in range(len(inputs.holdout_captions))]
    images = generate_images(
        pipeline,
        encode_prompts(pipeline, inputs.holdout_captions),
        empty,
        seeds=seeds,
        num_inference_steps=sampling.num_inference_steps,
        guidance_scale=sampling.guidance_scale,
        latent_size=side,
        scheduler=sampling.scheduler,
        batch_size=sampling.batch_size,
    )
    generated = extract_features(inputs.extractor, images)
    return float(scores.mean()), frechet_distance(inputs.holdout_features, generated)
