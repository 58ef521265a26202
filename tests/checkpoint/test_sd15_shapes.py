"""A Stable Diffusion 1.5-shaped checkpoint (860M-parameter UNet, VAE, CLIP-L text encoder; random
weights), saved as a diffusers folder and as one original-layout .safetensors: `memaudit inspect` runs
on both, the single file loads to the folder's very weights, and a minimal-budget `memaudit scan` at
512 px runs on the folder (what a scan does after loading does not depend on the file's format; slow:
~4 GB per format on disk)."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import torch

from memaudit.cli import run
from memaudit.errors import ExitCode
from tests.images import write_dataset

POLICY = """
name: sd15-minimal
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 1, guidance_scale: 2.0, batch_size: 2}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {steps: 1, generations: 1, calibration_quantile: 0.5}
  extraction: {generations: 2, min_clique: 2, random_prompts: 1, max_prompts: 1, comparison_side: 64}
  nearest_neighbour: {extractor: pixels, generations_per_prompt: 1, max_prompts: 1}
  fid: {enabled: false}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0}
"""

CAPTIONS = ["small left pleural effusion", "no acute cardiopulmonary process", "heart size normal"]
UNET, VAE, TEXT = 859_520_964, 83_653_863, 123_060_480  # SD 1.5's own parameter counts


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    from memaudit.checkpoint.saving import save_diffusers_folder, save_single_file_twin
    from memaudit.tiny.pipeline import SD15_SHAPES, build_tiny_pipeline

    root = tmp_path_factory.mktemp("sd15")
    pipeline = build_tiny_pipeline(SD15_SHAPES)
    folder = save_diffusers_folder(pipeline, root / "folder")
    weights, config = save_single_file_twin(pipeline, root / "sd15.safetensors", root / "config")
    del pipeline
    gc.collect()
    rng = np.random.default_rng(0)
    images = lambda: list(rng.integers(0, 256, (3, 512, 512), dtype=np.uint8))  # noqa: E731
    write_dataset(root / "train", images(), CAPTIONS, prefix="train")
    write_dataset(root / "holdout", images(), [f"{c} stable" for c in CAPTIONS], prefix="holdout")
    (root / "policy.yaml").write_text(POLICY)
    return root, {"diffusers folder": (folder, []), "single file": (weights, ["--config", str(config)])}


@pytest.mark.slow
@pytest.mark.parametrize("form", ["diffusers folder", "single file"])
def test_an_sd15_shaped_checkpoint_is_inspected(sd15, form, capsys):
    _, models = sd15
    model, extra = models[form]
    assert run(["inspect", str(model), *extra, "--json"]) == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["image_size"] == 512 and summary["latent_size"] == 64
    parameters = {c["name"]: c["parameters"] for c in summary["components"]}
    assert parameters == {"unet": UNET, "vae": VAE, "text_encoder": TEXT}
    assert len(summary["unet_transformer_blocks"]) == 16


@pytest.mark.slow
def test_the_single_file_loads_to_the_folders_weights(sd15):
    from memaudit.checkpoint import load_checkpoint

    _, models = sd15
    (folder, _), (weights, extra) = models["diffusers folder"], models["single file"]
    single = load_checkpoint(weights, config_dir=extra[1]).pipeline
    whole = load_checkpoint(folder).pipeline
    for name in ("unet", "vae", "text_encoder"):
        mine, theirs = getattr(single, name).state_dict(), getattr(whole, name).state_dict()
        assert mine.keys() == theirs.keys(), name
        assert all(torch.equal(mine[key], theirs[key]) for key in mine), name


@pytest.mark.slow
def test_an_sd15_shaped_checkpoint_is_scanned_at_512_px(sd15, tmp_path, capsys):
    root, models = sd15
    model, extra = models["diffusers folder"]
    out = tmp_path / "out"
    code = run(
        ["scan", str(model), *extra, "--train", str(root / "train"), "--holdout", str(root / "holdout"),
         "--policy", str(root / "policy.yaml"), "--out", str(out), "--feature-cache", str(tmp_path / "cache")]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert code in (ExitCode.OK, ExitCode.FINDING), err
    result = json.loads((out / "result.json").read_text())
    assert result["model"]["image_size"] == 512
    assert all(check["status"] in ("ok", "not_applicable") for check in result["checks"].values()), err
