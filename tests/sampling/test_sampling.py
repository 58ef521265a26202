"""Sampling against references: diffusers' own pipeline, and a plain per-sample noise-probe loop."""

from __future__ import annotations

import pytest
import torch

from memaudit.sampling.denoise import latent_side
from memaudit.sampling.generate import generate_images
from memaudit.sampling.probe import noise_magnitude_scores
from memaudit.sampling.scheduler import make_scheduler
from memaudit.sampling.seeds import initial_latents, sample_seed
from memaudit.sampling.text import encode_prompts

PROMPTS = ["no acute cardiopulmonary process", "small left pleural effusion", "cardiomegaly", "right lower lobe nodule"]


def test_generation_matches_the_diffusers_pipeline(tiny_pipeline):
    embeddings = encode_prompts(tiny_pipeline, PROMPTS[:2])
    empty = encode_prompts(tiny_pipeline, [""])
    seeds = [sample_seed(0, "test", i) for i in range(2)]
    ours = generate_images(
        tiny_pipeline,
        embeddings,
        empty,
        seeds=seeds,
        num_inference_steps=5,
        guidance_scale=7.5,
        latent_size=8,
        batch_size=1,
    )
    components = {**tiny_pipeline.components, "scheduler": make_scheduler(tiny_pipeline, "ddim", 5)}
    reference_pipeline = type(tiny_pipeline)(**components)  # leaves the shared fixture untouched
    reference_pipeline.set_progress_bar_config(disable=True)
    reference = reference_pipeline(
        prompt_embeds=embeddings.tokens,
        negative_prompt_embeds=empty.tokens.expand(2, -1, -1),
        latents=initial_latents((4, 8, 8), seeds),
        num_inference_steps=5,
        guidance_scale=7.5,
        output_type="pt",
    ).images
    assert ours.shape == reference.shape == (2, 3, 16, 16)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_generation_does_not_depend_on_batch_size(tiny_pipeline):
    embeddings = encode_prompts(tiny_pipeline, PROMPTS)
    empty = encode_prompts(tiny_pipeline, [""])
    seeds = [sample_seed(1, "test", i) for i in range(4)]
    kwargs = dict(num_inference_steps=3, guidance_scale=3.0, latent_size=8)
    one = generate_images(tiny_pipeline, embeddings, empty, seeds=seeds, batch_size=1, **kwargs)
    four = generate_images(tiny_pipeline, embeddings, empty, seeds=seeds, batch_size=4, **kwargs)
    assert torch.allclose(one, four, atol=1e-5)


def _loop_reference(pipeline, embeddings, empty, *, generations, steps, guidance, seed):
    """The definition, one prompt and one generation at a time, separate cond and uncond calls."""
    unet, embeddings, empty = pipeline.unet, embeddings.tokens, empty.tokens
    scores = []
    for p in range(embeddings.shape[0]):
        per_generation = []
        for g in range(generations):
            sampler = make_scheduler(pipeline, "ddim", 50)
            x = initial_latents((4, 8, 8), [sample_seed(seed, "noise-probe", p * generations + g)])
            total = 0.0
            for step, t in enumerate(sampler.timesteps[:steps]):
                with torch.no_grad():
                    eps_c = unet(sampler.scale_model_input(x, t), t, encoder_hidden_states=embeddings[p : p + 1]).sample
                    eps_u = unet(sampler.scale_model_input(x, t), t, encoder_hidden_states=empty).sample
                total += float(torch.linalg.vector_norm((eps_c - eps_u).double()))
                if step + 1 < steps:
                    x = sampler.step(eps_u + guidance * (eps_c - eps_u), t, x).prev_sample
            per_generation.append(total / steps)
        scores.append(sum(per_generation) / generations)
    return torch.tensor(scores, dtype=torch.float64)


@pytest.mark.parametrize(("steps", "generations", "batch_size"), [(1, 4, 3), (3, 2, 8)])
def test_noise_probe_equals_a_per_sample_loop(tiny_pipeline, steps, generations, batch_size):
    embeddings = encode_prompts(tiny_pipeline, PROMPTS)
    empty = encode_prompts(tiny_pipeline, [""])
    scores = noise_magnitude_scores(
        tiny_pipeline,
        embeddings,
        empty,
        generations=generations,
        steps=steps,
        num_inference_steps=50,
        guidance_scale=7.5,
        latent_size=8,
        seed=0,
        batch_size=batch_size,
    )
    expected = _loop_reference(
        tiny_pipeline, embeddings, empty, generations=generations, steps=steps, guidance=7.5, seed=0
    )
    assert torch.allclose(scores, expected, rtol=1e-5)
    assert scores.shape == (4,) and (scores > 0).all()


def test_probe_validates_steps(tiny_pipeline):
    embeddings = encode_prompts(tiny_pipeline, PROMPTS[:1])
    with pytest.raises(ValueError, match="`steps` must be between 1 and num_inference_steps=10"):
        noise_magnitude_scores(
            tiny_pipeline,
            embeddings,
            embeddings,
            generations=1,
            steps=11,
            num_inference_steps=10,
            guidance_scale=1,
            latent_size=8,
            seed=0,
        )


def test_latent_side(tiny_pipeline):
    assert latent_side(tiny_pipeline, None) == 8
    assert latent_side(tiny_pipeline, 32) == 16
    with pytest.raises(ValueError, match="not a multiple"):
        latent_side(tiny_pipeline, 33)
