"""memaudit's tiny diffusion-transformer base: a PixArt-Sigma-layout model trained on phantom chest X-rays.

The UNet demo (``recipe.py``) has a transformer twin for the ground truth on a DiT family: the same
phantom cohort (same seed and size), the demo base's trained VAE (the latent space is not what differs),
a T5-style tokenizer over the phantom report vocabulary with a random T5 encoder kept frozen (a fixed
projection of the tokens, as the UNet base's CLIP), and a ``PixArtTransformer2DModel`` (patches of 2,
learned sigma, cross-attention to the T5 states) trained from nothing with the fine-tuning engine.
The hospital fine-tune on top is ``hospital.train_hospital``, the UNet's own, unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.checkpoint.saving import save_diffusers_folder
from memaudit.tiny.recipe import RECIPE_NAME, train_network, write_base_data


@dataclass(frozen=True)
class DitRecipe:
    images: int = 2000  # the cohort: BaseRecipe's own (same seed, size and indications)
    image_size: int = 32
    indication_share: float = 0.5
    data_seed: int = 1
    model_seed: int = 0
    layers: int = 8
    heads: int = 2
    head_dim: int = 32
    text_hidden: int = 48
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 2e-4


def build_dit_pipeline(recipe: DitRecipe, words: list[str], vae_folder: Path):
    """A PixArt-Sigma pipeline at the recipe's width over ``words``, reading the VAE in ``vae_folder``."""
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    from memaudit.tiny.text_models import t5_encoder, t5_tokenizer

    torch.manual_seed(recipe.model_seed)
    vae = AutoencoderKL.from_pretrained(vae_folder, torch_dtype=torch.float32).eval()
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    tokenizer = t5_tokenizer(words, max_length=300)  # PixArt-Sigma reads 300 T5 tokens
    transformer = PixArtTransformer2DModel(
        sample_size=recipe.image_size // factor,
        in_channels=vae.config.latent_channels,
        out_channels=2 * vae.config.latent_channels,  # learned sigma: PixArt's second half of the channels
        num_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        attention_head_dim=recipe.head_dim,
        cross_attention_dim=recipe.heads * recipe.head_dim,
        caption_channels=recipe.text_hidden,
        use_additional_conditions=False,
    )
    pipeline = PixArtSigmaPipeline(
        tokenizer=tokenizer,
        text_encoder=t5_encoder(tokenizer, hidden=recipe.text_hidden).requires_grad_(False),
        vae=vae.requires_grad_(False),
        transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(),
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def train_dit_base(recipe: DitRecipe, vae_folder: Path, out: Path, *, on_stage=None, on_step=None) -> Path:
    """Train the transformer base into ``out/base`` (a diffusers folder with its recipe.json); resumable."""
    out = Path(out)
    say = on_stage or (lambda stage: None)
    say("phantom cohort")
    dataset, words = write_base_data(recipe, out / "data" / "base")
    pipeline = build_dit_pipeline(recipe, words, Path(vae_folder))
    say("transformer")
    log = train_network(
        pipeline, dataset, steps=recipe.steps, batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
        seed=recipe.model_seed, image_size=recipe.image_size, out=out, on_step=on_step,
    )  # fmt: skip
    folder = save_diffusers_folder(pipeline, out / "base")
    record = {"recipe": asdict(recipe), "data_digest": dataset.digest, "vae_from": str(vae_folder)}
    record["transformer_loss"] = {"first": log.losses[0], "last": log.losses[-1]} if log.losses else None
    write_atomic(out / "base" / RECIPE_NAME, json.dumps(record, indent=2) + "\n")
    return folder
