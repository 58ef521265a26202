"""The base-model recipe runs end to end (smoke scale) and yields a loadable, described model."""

from __future__ import annotations

import json

from memaudit.checkpoint import load_checkpoint, summarize
from memaudit.tiny.recipe import BaseRecipe, caption_words, train_base


def test_caption_words():
    assert caption_words(["Small left pleural effusion.", "No acute process."]) == [
        "acute",
        "effusion",
        "left",
        "no",
        "pleural",
        "process",
        "small",
    ]


def test_recipe_smoke_run(tmp_path):
    recipe = BaseRecipe(
        images=12,
        image_size=16,
        unet_channels=(32, 64),
        vae_channels=(8, 16),
        vae_steps=2,
        vae_batch_size=4,
        unet_steps=2,
        unet_batch_size=4,
    )
    stages = []
    folder = train_base(recipe, tmp_path, on_stage=stages.append)
    assert stages == ["phantom cohort", "VAE", "UNet"]
    summary = summarize(load_checkpoint(folder))
    assert summary.image_size == 16 and summary.latent_size == 8
    tokenizer = load_checkpoint(folder).pipeline.tokenizer
    assert tokenizer.convert_ids_to_tokens(tokenizer("pleural effusion").input_ids)[1:3] == [
        "pleural</w>",
        "effusion</w>",
    ]
    record = json.loads((folder / "recipe.json").read_text())
    assert record["recipe"]["images"] == 12 and len(record["data_digest"]) == 64
