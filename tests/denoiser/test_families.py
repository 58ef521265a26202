"""Every family through the one denoiser interface: loaded from a saved folder, summarised, and its
generations equal to what the family's own diffusers pipeline makes from the same prompt and noise."""

from __future__ import annotations

import pytest
import torch

import memaudit  # noqa: F401  (offline and torchvision guards before diffusers is imported)
from memaudit.checkpoint import load_checkpoint, summarize
from memaudit.denoiser import denoiser_for
from memaudit.sampling.generate import generate_images
from memaudit.sampling.seeds import initial_latents
from memaudit.tiny.families import save_tiny_family

PROMPT = "left pleural effusion"
# family builder -> (memaudit family, parameterization, latent factor, guidance scale, extra pipeline arguments)
FAMILIES = {
    "sdxl": ("sdxl", "epsilon", 8, 5.0, {}),
    "sd3": ("sd3", "flow", 8, 5.0, {}),
    "pixart-sigma": ("pixart", "epsilon", 8, 4.5, {"use_resolution_binning": False, "clean_caption": False}),
    "sana": ("sana", "flow", 32, 4.5, {"use_resolution_binning": False, "complex_human_instruction": None}),
    "flux": ("flux", "flow", 8, 3.5, {}),
    "lumina2": ("lumina2", "flow", 8, 4.0, {}),
    "radedit": ("sd", "epsilon", 8, 7.5, {}),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def loaded(request, tmp_path_factory):
    name = request.param
    folder = save_tiny_family(name, tmp_path_factory.mktemp(name) / "model", seed=0)
    return name, load_checkpoint(folder)


def test_the_family_is_read_from_the_folder_and_summarised(loaded):
    name, checkpoint = loaded
    family, parameterization, factor, _, _ = FAMILIES[name]
    summary = summarize(checkpoint)
    assert (checkpoint.family, summary.family, summary.prediction_type) == (family, family, parameterization)
    assert summary.vae_scale_factor == factor and summary.image_size == summary.latent_size * factor
    assert summary.unet_transformer_blocks, "every family's denoiser has transformer blocks to mask"
    assert all(block.cross_attention for block in summary.unet_transformer_blocks if family != "sd") or family == "sd"
    assert {component.name for component in summary.components} >= {summary.denoiser, "vae", "text_encoder"}


def _reference_latents(name, denoiser, seeds, side):
    """The seeded noise as the family's pipeline takes it (Flux: packed 2x2; the pipelines scale it by
    their sampler's initial sigma themselves)."""
    noise = initial_latents(denoiser.latent_shape(side), seeds)
    if name == "flux":
        from diffusers import FluxPipeline

        return FluxPipeline._pack_latents(noise, len(seeds), noise.shape[1], side, side)
    return noise


def test_generation_equals_the_familys_own_pipeline(loaded):
    """Prompt encoding, guidance, the parameterization, the sampler and the VAE's scale and shift, all at
    once: two steps of memaudit's loop give the image the diffusers pipeline gives."""
    name, checkpoint = loaded
    _, _, factor, guidance, extra = FAMILIES[name]
    denoiser = denoiser_for(checkpoint.pipeline, guidance=guidance)
    side, seeds = 8, [3]
    ours = generate_images(
        denoiser,
        denoiser.encode_prompts([PROMPT]),
        denoiser.unconditional(),
        seeds=seeds,
        num_inference_steps=2,
        guidance_scale=guidance,
        latent_size=side,
        scheduler="checkpoint",
    )
    pipeline = checkpoint.pipeline
    pipeline.set_progress_bar_config(disable=True)
    with torch.no_grad():
        reference = pipeline(
            prompt=PROMPT,
            latents=_reference_latents(name, denoiser, seeds, side),
            num_inference_steps=2,
            guidance_scale=guidance,
            height=side * factor,
            width=side * factor,
            output_type="pt",
            **extra,
        ).images
    assert ours.shape == reference.shape == (1, 3, side * factor, side * factor)
    assert torch.allclose(ours, reference.float().cpu(), atol=2e-4), float((ours - reference).abs().max())
