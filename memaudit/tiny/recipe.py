"""How memaudit trains its own tiny SD-layout base model on phantom chest X-rays, from nothing.

1. a phantom cohort (broad: many normals, one or two findings per abnormal study, indications on some);
2. a CLIP tokenizer over the phantom report vocabulary, a random CLIP text encoder (kept frozen:
   a fixed projection of the tokens the UNet learns to read), a VAE and a UNet from configs;
3. the VAE trained on the cohort (reconstruction + KL);
4. the UNet trained with the fine-tuning engine (`full` over `all` blocks) on the cohort.
Every stage is seeded; recipe.json records the settings and the data digest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.checkpoint.families import family_of_pipeline
from memaudit.checkpoint.saving import save_diffusers_folder
from memaudit.data import ImageCaptionDataset
from memaudit.finetune.config import TrainConfig
from memaudit.finetune.mask_spec import parse_mask
from memaudit.finetune.methods import apply_method
from memaudit.finetune.training import train
from memaudit.phantoms.cohort import report_words, write_cohort
from memaudit.tiny.pipeline import TinySDConfig, build_tiny_pipeline
from memaudit.tiny.vae_training import load_images, train_vae

RECIPE_NAME = "recipe.json"  # in every trained model's folder: its recipe, data digest and losses


@dataclass(frozen=True)
class BaseRecipe:
    images: int = 2000
    image_size: int = 32
    indication_share: float = 0.5
    data_seed: int = 1
    model_seed: int = 0
    unet_channels: tuple[int, ...] = (32, 64)
    vae_channels: tuple[int, ...] = (32, 64)
    vae_steps: int = 1000
    vae_batch_size: int = 64
    vae_learning_rate: float = 1e-3
    unet_steps: int = 4000
    unet_batch_size: int = 32
    unet_learning_rate: float = 2e-4


def caption_words(captions: list[str]) -> list[str]:
    return sorted({word for caption in captions for word in re.findall(r"[a-z]+", caption.lower())})


def tiny_config(recipe: BaseRecipe, words: list[str]) -> TinySDConfig:
    levels = len(recipe.unet_channels)
    return TinySDConfig(
        latent_size=recipe.image_size // 2 ** (len(recipe.vae_channels) - 1),
        unet_channels=recipe.unet_channels,
        down_blocks=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_blocks=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1),
        vae_channels=recipe.vae_channels,
        words=tuple(words),
    )


def write_base_data(recipe, folder: Path) -> tuple[ImageCaptionDataset, list[str]]:
    """The base's phantom cohort (``recipe.images`` studies) in ``folder``, and the words of its reports."""
    dataset = ImageCaptionDataset(
        write_cohort(
            folder, count=recipe.images, seed=recipe.data_seed, size=recipe.image_size,
            indication_share=recipe.indication_share,
        )
    )  # fmt: skip
    return dataset, sorted(set(report_words()) | set(caption_words(dataset.captions)))


def train_network(
    pipeline, dataset: ImageCaptionDataset, *, steps: int, batch_size: int, learning_rate: float, seed: int,
    image_size: int, out: Path, on_step,
):  # fmt: skip
    """Train every parameter of the pipeline's denoising network (UNet or transformer) on ``dataset`` with
    the fine-tuning engine (resumable from ``out/checkpoints/base-<network>``, a checkpoint every tenth of
    the steps), and put the result back."""
    config = TrainConfig(
        method="full",
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        checkpoint_every=max(1, steps // 10),
    )
    module = family_of_pipeline(pipeline).module
    network = getattr(pipeline, module)
    method = apply_method("full", network, parse_mask("all", network))
    log = train(
        pipeline,
        method,
        dataset=dataset,
        config=config,
        image_size=image_size,
        checkpoint_dir=out / "checkpoints" / f"base-{module}",
        on_step=on_step,
    )
    setattr(pipeline, module, method.merge())
    return log


def train_base(
    recipe: BaseRecipe,
    out: Path,
    *,
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> Path:
    """Train the base model into ``out/base`` (a diffusers folder) and return that folder."""
    out = Path(out)
    say = on_stage or (lambda stage: None)
    say("phantom cohort")
    dataset, words = write_base_data(recipe, out / "data" / "base")
    pipeline = build_tiny_pipeline(tiny_config(recipe, words), seed=recipe.model_seed)
    say("VAE")
    vae_losses = train_vae(
        pipeline.vae,
        load_images(dataset, recipe.image_size),
        steps=recipe.vae_steps,
        batch_size=recipe.vae_batch_size,
        learning_rate=recipe.vae_learning_rate,
        seed=recipe.model_seed,
        on_step=on_step,
    )
    say("UNet")
    pipeline.vae.requires_grad_(False)
    log = train_network(
        pipeline, dataset, steps=recipe.unet_steps, batch_size=recipe.unet_batch_size,
        learning_rate=recipe.unet_learning_rate, seed=recipe.model_seed, image_size=recipe.image_size, out=out,
        on_step=on_step,
    )  # fmt: skip
    folder = save_diffusers_folder(pipeline, out / "base")
    record = {
        "recipe": asdict(recipe),
        "data_digest": dataset.digest,
        "vae_loss": {"first": vae_losses[0] if vae_losses else None, "last": vae_losses[-1] if vae_losses else None},
        "unet_loss": {"first": log.losses[0] if log.losses else None, "last": log.losses[-1] if log.losses else None},
    }
    write_atomic(out / "base" / RECIPE_NAME, json.dumps(record, indent=2) + "\n")
    return folder
