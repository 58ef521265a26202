"""A velocity-predicting model gets the scores of the noise-predicting model it is equivalent to.

The twin wraps the tiny UNet so that it outputs v = (eps - sqrt(1 - a) x_t) / sqrt(a) for the same
eps (a hook on the forward, no library code patched), with the scheduler config saying
``v_prediction``. Every score is defined on the noise, so the twin must score exactly as the original;
read as raw outputs it would not (the first assertion shows the outputs do differ).
"""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

from memaudit.metrics.triage import DETECTORS
from memaudit.sampling.generate import generate_images
from memaudit.sampling.membership import membership_scores
from memaudit.sampling.text import encode_prompts
from memaudit.sampling.triage import triage_scores
from memaudit.tiny.pipeline import build_tiny_pipeline

CAPTIONS = ["small left effusion", "no acute process", "cardiomegaly with edema"]
SAMPLING = dict(num_inference_steps=10, guidance_scale=7.5, seed=3, scheduler="ddim", latent_size=8)


def _as_velocity(unet, args, kwargs, output):
    sample, timestep = args[0], args[1] if len(args) > 1 else kwargs["timestep"]
    alpha = unet.alphas_cumprod[torch.as_tensor(timestep).round().long()].to(sample.dtype)
    alpha = alpha.reshape(-1, 1, 1, 1) if alpha.dim() else alpha
    return UNet2DConditionOutput(sample=(output.sample - (1 - alpha).sqrt() * sample) / alpha.sqrt())


@pytest.fixture(scope="module")
def twins():
    noise_model, velocity_model = build_tiny_pipeline(seed=0), build_tiny_pipeline(seed=0)
    velocity_model.scheduler = DDIMScheduler.from_config(
        velocity_model.scheduler.config, prediction_type="v_prediction"
    )
    velocity_model.unet.alphas_cumprod = velocity_model.scheduler.alphas_cumprod
    velocity_model.unet.register_forward_hook(_as_velocity, with_kwargs=True)
    return noise_model, velocity_model


def _triage(pipeline, detector):
    generations = max(2, DETECTORS[detector].min_generations)
    embeddings, empty = encode_prompts(pipeline, CAPTIONS), encode_prompts(pipeline, [""])
    return triage_scores(pipeline, embeddings, empty, detector=detector, generations=generations, steps=2, **SAMPLING)


def test_the_twin_outputs_velocity_not_noise(twins):
    noise_model, velocity_model = twins
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = encode_prompts(noise_model, CAPTIONS[:2]).tokens
    with torch.no_grad():
        eps = noise_model.unet(latents, 981, encoder_hidden_states=context).sample
        v = velocity_model.unet(latents, 981, encoder_hidden_states=context).sample
    assert (v - eps).norm() > eps.norm()  # at t = 981, v is about 1/sqrt(a) ~ 10x the noise


@pytest.mark.parametrize("detector", sorted(d for d in DETECTORS if d != "attention"))  # attention reads no output
def test_every_triage_detector_reads_the_noise(twins, detector):
    noise_model, velocity_model = twins
    expected = _triage(noise_model, detector)
    assert torch.allclose(_triage(velocity_model, detector), expected, rtol=1e-3, atol=1e-6)


def test_membership_reads_the_noise(twins):
    noise_model, velocity_model = twins
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    embeddings = encode_prompts(noise_model, CAPTIONS)
    expected = membership_scores(noise_model, latents, embeddings, timestep=200, p=4)
    assert torch.allclose(
        membership_scores(velocity_model, latents, embeddings, timestep=200, p=4), expected, rtol=1e-3
    )


def test_generation_steps_with_the_models_own_parameterization(twins):
    noise_model, velocity_model = twins
    embeddings, empty = encode_prompts(noise_model, CAPTIONS[:2]), encode_prompts(noise_model, [""])
    sampling = {k: v for k, v in SAMPLING.items() if k != "seed"}
    expected = generate_images(noise_model, embeddings, empty, seeds=[5, 6], **sampling)
    assert torch.allclose(
        generate_images(velocity_model, embeddings, empty, seeds=[5, 6], **sampling), expected, atol=1e-4
    )


def test_the_threshold_mitigation_drops_the_same_samples_by_their_noise(twins):
    """Wen's training-time mitigation compares the noise magnitude with an absolute threshold; on raw
    velocities (up to 1/sqrt(a) larger at high t) it would drop more of the batch."""
    from memaudit.denoiser import denoiser_for
    from memaudit.finetune.config import Mitigation, TrainConfig
    from memaudit.finetune.training import _micro_step

    latents = torch.randn(6, 4, 8, 8, generator=torch.Generator().manual_seed(2))

    def dropped(pipeline, threshold):
        config = TrainConfig(
            method="full", steps=1, batch_size=16, mitigation=Mitigation(kind="threshold", threshold=threshold)
        )
        empty = encode_prompts(pipeline, [""])
        common = dict(latents=latents, captions=CAPTIONS * 2, empty=empty, vocabulary=[], with_grad=False)
        denoiser = denoiser_for(pipeline)
        return [
            _micro_step(denoiser, config, generator=torch.Generator().manual_seed(s), **common)[1] for s in range(3)
        ]

    noise_model, velocity_model = twins
    counts = {threshold: dropped(noise_model, threshold) for threshold in (0.05, 0.2, 1.0, 5.0)}
    partial = [t for t, c in counts.items() if 0 < sum(c) < 48]
    assert partial, f"no threshold drops part of the batch: {counts}"
    for threshold in partial:
        assert dropped(velocity_model, threshold) == counts[threshold]


def test_a_sigma_sampler_scales_its_input_and_the_noise_follows(twins):
    """Euler (the `checkpoint` sampler of many fine-tunes) feeds the UNet latents / sqrt(1 + sigma^2):
    the conversion must read that scaled input and the sampler's own sigma, at every step."""
    from diffusers import EulerDiscreteScheduler

    def with_euler(pipeline, prediction_type):
        config = pipeline.scheduler.config
        pipeline.scheduler = EulerDiscreteScheduler.from_config(config, prediction_type=prediction_type)
        return pipeline

    velocity_model = twins[1]
    noise_euler = with_euler(build_tiny_pipeline(seed=0), "epsilon")
    velocity_euler = with_euler(build_tiny_pipeline(seed=0), "v_prediction")
    velocity_euler.unet = velocity_model.unet  # the hooked twin, same weights
    embeddings, empty = encode_prompts(noise_euler, CAPTIONS), encode_prompts(noise_euler, [""])
    common = dict(SAMPLING, scheduler="checkpoint")
    for detector in ("wen", "asthana", "jeon"):
        scores = [
            triage_scores(pipeline, embeddings, empty, detector=detector, generations=2, steps=2, **common)
            for pipeline in (noise_euler, velocity_euler)
        ]
        assert torch.allclose(scores[1], scores[0], rtol=1e-3, atol=1e-6), detector
