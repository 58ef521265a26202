"""Tiny pipelines of every model family: built from configs, saved, reloaded offline, and run end to end."""

from __future__ import annotations

import os
import socket

import pytest
import torch

import memaudit  # noqa: F401  (offline and torchvision guards before diffusers is imported)
from memaudit.tiny.families import FAMILY_BUILDERS, build_sd3, save_tiny_family

PROMPT = "left pleural effusion"
# The VAE's downsampling factor; builders default to an 8x8 latent.
DOWNSAMPLING = {name: 8 for name in FAMILY_BUILDERS} | {"sana": 32}
CALL_SETTINGS = {
    "sdxl": {"guidance_scale": 5.0},
    "sd3": {"guidance_scale": 5.0, "max_sequence_length": 32},
    # 8x8 latents are in none of the aspect-ratio bins; no bs4/ftfy for caption cleaning.
    "pixart-sigma": {"guidance_scale": 4.5, "use_resolution_binning": False, "clean_caption": False},
    "sana": {"guidance_scale": 4.5, "use_resolution_binning": False, "max_sequence_length": 32},
    "flux": {"guidance_scale": 3.5, "max_sequence_length": 32},  # distilled guidance, embedded
    "lumina2": {"guidance_scale": 4.0},  # the default 256 tokens: its system prompt comes first
    "radedit": {"guidance_scale": 7.5},
}


def _no_network(*args, **kwargs):
    raise AssertionError(f"network access attempted: {args}")


@pytest.fixture(scope="module", params=sorted(FAMILY_BUILDERS))
def reloaded(request, tmp_path_factory):
    """(family name, pipeline reloaded from its saved folder), with every socket connection refused."""
    from diffusers import DiffusionPipeline

    name = request.param
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        folder = save_tiny_family(name, tmp_path_factory.mktemp(name) / "model", seed=0)
        pipeline = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipeline.set_progress_bar_config(disable=True)
    return name, pipeline


def _denoiser(pipeline) -> torch.nn.Module:
    return pipeline.unet if hasattr(pipeline, "unet") else pipeline.transformer


def test_family_round_trips_through_a_saved_folder(reloaded):
    name, pipeline = reloaded
    built = FAMILY_BUILDERS[name](seed=0)
    assert type(pipeline) is type(built)
    for component, module in built.components.items():
        assert type(pipeline.components[component]) is type(module), component
        if isinstance(module, torch.nn.Module):
            saved, loaded = module.state_dict(), pipeline.components[component].state_dict()
            assert saved.keys() == loaded.keys(), component
            assert all(saved[key].equal(loaded[key]) for key in saved), component
    assert _denoiser(pipeline).state_dict().keys() == _denoiser(built).state_dict().keys()


def test_family_tokenizers_know_the_report_words(reloaded):
    _, pipeline = reloaded
    tokenizers = [module for component, module in pipeline.components.items() if component.startswith("tokenizer")]
    assert tokenizers
    for tokenizer in tokenizers:
        assert len(tokenizer.tokenize(PROMPT)) == 3, type(tokenizer).__name__


def test_family_pipeline_generates_an_image_offline(reloaded):
    name, pipeline = reloaded
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    side = 8 * DOWNSAMPLING[name]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        images = pipeline(
            prompt=PROMPT,
            num_inference_steps=2,
            output_type="pt",
            generator=torch.Generator().manual_seed(0),
            height=side,
            width=side,
            **CALL_SETTINGS[name],
        ).images
    assert images.shape == (1, 3, side, side)
    assert torch.isfinite(images).all()


def test_builders_are_seeded():
    first, second, other = build_sd3(seed=1), build_sd3(seed=1), build_sd3(seed=2)
    weights = [model.transformer.state_dict() for model in (first, second, other)]
    assert all(weights[0][key].equal(weights[1][key]) for key in weights[0])
    assert not all(weights[0][key].equal(weights[2][key]) for key in weights[0])


def test_sd3_without_t5_saves_reloads_and_runs(tmp_path):
    from diffusers import DiffusionPipeline

    build_sd3(seed=0, with_t5=False).save_pretrained(tmp_path, safe_serialization=True)
    # model_index.json records text_encoder_3 and tokenizer_3 as [null, null], but diffusers 0.42 drops null
    # entries that are not in the pipeline's _optional_components, so the load must name them.
    pipeline = DiffusionPipeline.from_pretrained(tmp_path, local_files_only=True, text_encoder_3=None, tokenizer_3=None)
    assert pipeline.text_encoder_3 is None and pipeline.tokenizer_3 is None
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline(
        prompt=PROMPT,
        num_inference_steps=2,
        guidance_scale=5.0,
        max_sequence_length=32,
        output_type="pt",
        generator=torch.Generator().manual_seed(0),
        height=64,
        width=64,
    ).images
    assert images.shape == (1, 3, 64, 64) and torch.isfinite(images).all()
