"""The demo's transformer twin: a PixArt-Sigma-layout base trained on the phantom cohort over the demo
base's VAE, and the hospital fine-tune on it, at toy sizes."""

from __future__ import annotations

import json

from memaudit.checkpoint import load_checkpoint
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.dit_recipe import DitRecipe, train_dit_base
from memaudit.tiny.hospital import HospitalRecipe, train_hospital


def test_a_dit_base_trains_on_the_phantoms_and_takes_the_hospital_fine_tune(tmp_path):
    recipe = DitRecipe(images=24, layers=2, steps=3, batch_size=4)
    base = train_dit_base(recipe, DEMO_MODELS_DIR / "base" / "vae", tmp_path)
    checkpoint = load_checkpoint(base)
    assert checkpoint.family == "pixart" and checkpoint.pipeline.transformer.config.num_layers == 2
    assert checkpoint.pipeline.transformer.config.sample_size == 16  # 32 px through the demo VAE's 2x
    record = json.loads((base / "recipe.json").read_text())
    assert record["recipe"]["steps"] == 3 and len(record["data_digest"]) == 64
    demo_vae = load_checkpoint(DEMO_MODELS_DIR / "base").pipeline.vae.state_dict()
    assert all((checkpoint.pipeline.vae.state_dict()[k] == v).all() for k, v in demo_vae.items())
    hospital = train_hospital(
        HospitalRecipe(generic=8, planted=2, repeats=2, holdout=4, steps=2, batch_size=4), base, tmp_path
    )
    assert load_checkpoint(hospital).family == "pixart"


def test_the_shipped_transformer_twin_is_a_pixart_pair_on_the_demo_hospital_data(tmp_path):
    from memaudit.paths import MODELS_DIR
    from memaudit.tiny.hospital import data_for_model

    shipped = MODELS_DIR / "dit-demo"
    assert [load_checkpoint(shipped / name).family for name in ("base", "hospital")] == ["pixart", "pixart"]
    data = data_for_model(shipped / "hospital", tmp_path / "data")  # checks the recorded data digest
    assert len(data.planted_captions) == 12
    recorded = json.loads((DEMO_MODELS_DIR / "hospital" / "recipe.json").read_text())["data_digest"]
    assert json.loads((shipped / "hospital" / "recipe.json").read_text())["data_digest"] == recorded
