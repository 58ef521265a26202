"""Real-size shapes of the families a hospital fine-tunes today, with random weights: an SDXL-shaped and
an SD 3.5 Medium-shaped model (T5 left out, as diffusers allows) are built from their published
configs, saved as diffusers folders, loaded and inspected as memaudit loads any model, and run through
one batched triage probe (Wen's noise magnitude, one step) at a reduced resolution.

    .venv/bin/python bench/family_shapes.py [--families sdxl sd35-medium] [--resolution 256] [--device cpu]

Prints one JSON line per family: parameters per component, seconds to build, save, load and probe,
and the peak resident memory of the process (CPU) or the peak CUDA allocation (GPU). Needs about
15 GB of memory and 15 GB of disk per family, at float32.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

import memaudit  # noqa: F401  (runtime guards before diffusers)
from memaudit.checkpoint import load_checkpoint, summarize
from memaudit.denoiser import denoiser_for
from memaudit.sampling.triage import triage_scores
from memaudit.tiny.pipeline import DEFAULT_WORDS
from memaudit.tiny.text_models import clip_tokenizer

SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280), transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
)  # fmt: skip
SD35_MEDIUM = dict(
    sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
    num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048,
    pos_embed_max_size=384, dual_attention_layers=tuple(range(13)), qk_norm="rms_norm",
)  # fmt: skip
VAE = dict(
    block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=1024,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)  # fmt: skip


def _clip(tokenizer, *, hidden: int, layers: int, heads: int, projection: int | None):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=49408, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, max_position_embeddings=77, projection_dim=projection or hidden,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def build(family: str):
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    tokenizer = clip_tokenizer(DEFAULT_WORDS)
    large = _clip(tokenizer, hidden=768, layers=12, heads=12, projection=768 if family != "sdxl" else None)
    big_g = _clip(tokenizer, hidden=1280, layers=32, heads=20, projection=1280)
    if family == "sdxl":
        return StableDiffusionXLPipeline(
            unet=UNet2DConditionModel(**SDXL_UNET), vae=AutoencoderKL(latent_channels=4, **VAE),
            text_encoder=large, text_encoder_2=big_g, tokenizer=tokenizer, tokenizer_2=tokenizer,
            scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        )  # fmt: skip
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**SD35_MEDIUM),
        vae=AutoencoderKL(latent_channels=16, use_quant_conv=False, use_post_quant_conv=False, **VAE),
        text_encoder=large, text_encoder_2=big_g, text_encoder_3=None, tokenizer=tokenizer, tokenizer_2=tokenizer,
        tokenizer_3=None, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )  # fmt: skip


def _peak(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB (Linux)


def measure(family: str, *, resolution: int, device: str, scratch: Path) -> dict:
    started = time.perf_counter()
    pipeline = build(family)
    built = time.perf_counter()
    folder = scratch / family
    pipeline.save_pretrained(folder, safe_serialization=True)
    del pipeline
    saved = time.perf_counter()
    checkpoint = load_checkpoint(folder)
    summary = summarize(checkpoint)
    loaded = time.perf_counter()
    denoiser = denoiser_for(checkpoint.pipeline.to(device))
    prompts = ["small left pleural effusion", "no acute cardiopulmonary process"]
    with torch.no_grad():
        scores = triage_scores(
            denoiser, denoiser.encode_prompts(prompts), denoiser.unconditional(), detector="wen", generations=2,
            steps=1, num_inference_steps=10, guidance_scale=7.0, latent_size=denoiser.latent_side(resolution),
            seed=0, batch_size=4,
        )  # fmt: skip
    probed = time.perf_counter()
    return {
        "family": summary.family,
        "parameters": {c.name: c.parameters for c in summary.components},
        "blocks": len(summary.unet_transformer_blocks),
        "prediction": summary.prediction_type,
        "resolution": resolution,
        "device": str(device),
        "scores_finite": bool(torch.isfinite(scores).all()),
        "seconds": {
            "build": round(built - started, 1),
            "save": round(saved - built, 1),
            "load": round(loaded - saved, 1),
            "probe_8_evaluations": round(probed - loaded, 1),
        },
        "peak_gib": round(_peak(torch.device(device)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["sdxl", "sd35-medium"], choices=["sdxl", "sd35-medium"])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    for family in args.families:
        with tempfile.TemporaryDirectory() as scratch:
            print(json.dumps(measure(family, resolution=args.resolution, device=args.device, scratch=Path(scratch))))


if __name__ == "__main__":
    main()
