"""Ground truth for the battery: a UNet stand-in that exactly memorizes planted training images.

For a planted prompt it is the closed-form denoiser of that prompt's latent z_p: it predicts
eps = (x_t - sqrt(a_t) z_p) / sqrt(1 - a_t), so DDIM lands on z_p and the VAE decodes the training
image. For every other prompt (and the empty one) it is the exact denoiser of a standard normal
prior, so generations are diverse and carry no prompt information. Training images of planted
prompts are the decodes of their z_p, written to PNG; everything else is a decode of a fresh latent.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from memaudit.checkpoint import Checkpoint
from memaudit.sampling.generate import decode_latents
from memaudit.sampling.text import encode_prompts


class ClosedFormUNet(torch.nn.Module):
    def __init__(self, config, alphas_cumprod: torch.Tensor, planted: list[tuple[torch.Tensor, torch.Tensor]]):
        super().__init__()
        self.config = config
        self.register_buffer("alphas_cumprod", alphas_cumprod.double())
        self.planted = planted  # (prompt embedding [L, D], latent [C, H, W])

    @property
    def device(self):
        return self.alphas_cumprod.device

    @property
    def dtype(self):
        return torch.float32

    def forward(self, sample, timestep, encoder_hidden_states):
        alpha = self.alphas_cumprod[int(timestep)]
        x = sample.double()
        prior_mean = alpha.sqrt() * x  # posterior mean of x0 under N(0, I): sqrt(a) x / (a + 1 - a)
        x0 = prior_mean.clone()
        for index, embedding in enumerate(encoder_hidden_states):
            for planted_embedding, latent in self.planted:
                if torch.equal(embedding, planted_embedding):
                    x0[index] = latent.double()
        eps = (x - alpha.sqrt() * x0) / (1 - alpha).sqrt()
        return SimpleNamespace(sample=eps.float())


def with_unet(pipeline, unet: torch.nn.Module):
    """A Stable Diffusion pipeline with ``pipeline``'s parts and the closed-form ``unet`` in place of its own."""
    from diffusers import StableDiffusionPipeline

    parts = {name: getattr(pipeline, name) for name in ("vae", "text_encoder", "tokenizer", "scheduler")}
    return StableDiffusionPipeline(
        unet=unet, safety_checker=None, feature_extractor=None, requires_safety_checker=False, **parts
    )


def _write(folder: Path, rows: list[dict], images: torch.Tensor) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for row, image in zip(rows, images, strict=True):
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / row["file_name"])
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def build_memorizer(
    tiny_pipeline, root: Path, *, planted: int = 4, generic: int = 8, holdout: int = 24, caption_prefix: str = ""
):
    """(checkpoint double, train folder, holdout folder, planted item ids); every caption starts with
    ``caption_prefix`` (tests use a sentinel to prove captions never reach a report)."""
    generator = torch.Generator().manual_seed(1234)
    shape = (4, 8, 8)

    def latents(count):
        return torch.randn(count, *shape, generator=generator)

    planted_captions = [f"{caption_prefix}planted patient {k} small left pleural effusion" for k in range(planted)]
    generic_captions = ["no acute cardiopulmonary process"] * (generic // 2) + [
        f"stable heart size case {k}" for k in range(generic - generic // 2)
    ]
    planted_latents = latents(planted)
    train_images = torch.cat(
        [decode_latents(tiny_pipeline, planted_latents), decode_latents(tiny_pipeline, latents(generic))]
    )
    captions = planted_captions + [caption_prefix + caption for caption in generic_captions]
    rows = [{"id": f"train-{i:03d}", "file_name": f"{i:03d}.png", "text": c} for i, c in enumerate(captions)]
    train = _write(root / "train", rows, train_images)
    holdout_rows = [
        {
            "id": f"holdout-{i:03d}",
            "file_name": f"{i:03d}.png",
            "text": f"{caption_prefix}holdout patient {i} cardiomegaly",
        }
        for i in range(holdout)
    ]
    holdout_folder = _write(root / "holdout", holdout_rows, decode_latents(tiny_pipeline, latents(holdout)))
    embeddings = encode_prompts(tiny_pipeline, planted_captions).tokens
    unet = ClosedFormUNet(
        tiny_pipeline.unet.config,
        tiny_pipeline.scheduler.alphas_cumprod,
        list(zip(embeddings, planted_latents, strict=True)),
    )
    double = with_unet(tiny_pipeline, unet)
    checkpoint = Checkpoint(source=root / "memorizer", format="test-double", pipeline=double, weight_files=[])
    return checkpoint, train, holdout_folder, [row["id"] for row in rows[:planted]]
