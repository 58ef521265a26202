"""`memaudit inspect` and `memaudit scan` on a saved tiny model of every family: the battery (triage,
extraction, nearest neighbour, membership, FID) runs through the one denoiser interface."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.tiny.families import save_tiny_family
from memaudit.tiny.memorizer import build_memorizer

POLICY = """
name: families
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 4, family_defaults: true, batch_size: 8, resolution: 64}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {steps: 1, generations: 2, calibration_quantile: 0.99}
  extraction: {generations: 4, prompts: triage, random_prompts: 1, verify_quantile: 0.01}
  nearest_neighbour: {extractor: pixels, generations_per_prompt: 1, near_copy_quantile: 0.05}
  membership: {enabled: true, reference: none}
  fid: {required: true}
  retrigger: {enabled: true, when: always, max_prompts: 1, scales: [0.05], ascent_radius: 0.1, ascent_steps: 1,
              generations: 2}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0, severity: fail}
  near-copy-rate: {metric: nearest_neighbour.near_copy_rate, at_most: 1.0, severity: warn}
  fid: {metric: fid.fid, at_most: 1000000, severity: warn}
"""
# tiny builder -> (family, its default guidance scale: CheXGenBench's, else its diffusers pipeline's)
FAMILIES = {
    "sdxl": ("sdxl", 5.0),
    "sd3": ("sd3", 4.5),
    "pixart-sigma": ("pixart", 4.5),
    "sana": ("sana", 4.5),
    "flux": ("flux", 3.5),
    "lumina2": ("lumina2", 4.0),
    "radedit": ("sd", 7.5),
}


@pytest.fixture(scope="module")
def data(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("family-data")
    (root / "policy.yaml").write_text(POLICY)
    _, train, holdout, _ = build_memorizer(tiny_pipeline, root)
    return root, train, holdout


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_is_inspected_and_scanned(name, data, tmp_path, capsys):
    root, train, holdout = data
    folder = save_tiny_family(name, tmp_path / name, seed=0)
    assert run(["inspect", str(folder)]) == ExitCode.OK
    family, guidance = FAMILIES[name]
    assert f"family {family}" in capsys.readouterr().out
    out = tmp_path / "out"
    code = run(
        [
            *("scan", str(folder), "--train", str(train), "--holdout", str(holdout)),
            *("--policy", str(root / "policy.yaml"), "--out", str(out)),
        ]
    )
    printed = capsys.readouterr()
    assert code in (ExitCode.OK, ExitCode.FINDING), printed.err
    result = json.loads((out / "result.json").read_text())
    assert (result["model"]["family"], result["model"]["guidance_scale"]) == (family, guidance)
    checks = result["checks"]
    assert {"noise_magnitude", "extraction", "nearest_neighbour", "membership", "fid", "retrigger"} <= set(checks)
    assert all(checks[name]["status"] != "error" for name in checks), {n: c.get("message") for n, c in checks.items()}
    assert len(checks["noise_magnitude"]["noise_magnitude"]["train"]) > 0


def test_an_unknown_family_is_exit_2_naming_the_supported_ones(data, tmp_path, capsys):
    root, train, holdout = data
    folder = save_tiny_family("sd3", tmp_path / "model", seed=0)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps(index | {"_class_name": "KandinskyV22Pipeline"}))
    for command in (["inspect", str(folder)], ["scan", str(folder), "--train", str(train), "--holdout", str(holdout)]):
        extra = ["--policy", str(root / "policy.yaml"), "--out", str(tmp_path / "out")] if command[0] == "scan" else []
        assert run([*command, *extra]) == ExitCode.ERROR
        err = capsys.readouterr().err
        assert "unsupported model family 'KandinskyV22Pipeline'" in err and "Flux.1 (FluxPipeline)" in err, err
    assert not (tmp_path / "out" / "result.json").exists()


def test_prompts_are_counted_as_far_as_the_pipeline_reads_them(tmp_path):
    """SD 3's pipeline reads 256 T5 tokens whatever the tokenizer's own maximum (32 in the tiny one):
    captions that differ within those 256 tokens are two prompts, in the scan and in its preflight."""
    from memaudit.checkpoint import load_checkpoint
    from memaudit.checkpoint.loading import load_tokenizer
    from memaudit.data import ImageCaptionDataset
    from memaudit.denoiser import denoiser_for
    from memaudit.scan.prompts import prompt_groups
    from tests.images import write_dataset

    folder = save_tiny_family("sd3", tmp_path / "model", seed=0)
    denoiser = denoiser_for(load_checkpoint(folder).pipeline)
    long = " ".join(["small left pleural effusion"] * 12)  # 48 words: past 32 tokens, within 256
    captions = [long + " cardiomegaly", long + " pneumothorax"]
    images = [np.full((8, 8), value, dtype=np.uint8) for value in (10, 200)]
    dataset = ImageCaptionDataset(write_dataset(tmp_path / "data", images, captions, prefix="study"))
    assert denoiser.text_max_length == 256 and denoiser.tokenizer.model_max_length == 32
    assert len(prompt_groups(dataset, denoiser.tokenizer, max_length=denoiser.text_max_length)) == 2
    assert len(prompt_groups(dataset, load_tokenizer(folder))) == 2  # the preflight counts the same


def test_sd3_without_t5_counts_prompts_with_the_clips_77_tokens(tmp_path, capsys):
    """SD 3.5 without T5 reads only the CLIPs: two captions equal in their first 77 tokens are one prompt."""
    from memaudit.checkpoint import load_checkpoint
    from memaudit.checkpoint.loading import load_tokenizer
    from memaudit.denoiser import denoiser_for
    from memaudit.tiny.families import build_sd3

    folder = tmp_path / "model"
    build_sd3(seed=0, with_t5=False).save_pretrained(folder, safe_serialization=True)
    denoiser = denoiser_for(load_checkpoint(folder).pipeline)
    assert denoiser.text_max_length == 77 and load_tokenizer(folder).model_max_length == 77
    assert run(["inspect", str(folder)]) == ExitCode.OK
    assert "text length 77" in capsys.readouterr().out


def test_the_attention_detector_on_joint_attention_is_refused_before_model_work(data, tmp_path, capsys):
    _, train, holdout = data
    folder = save_tiny_family("sd3", tmp_path / "model", seed=0)
    policy = tmp_path / "attention.yaml"
    policy.write_text(POLICY.replace("noise_magnitude: {steps: 1,", "noise_magnitude: {detector: attention, steps: 1,"))
    arguments = ["scan", str(folder), "--train", str(train), "--holdout", str(holdout), "--policy", str(policy)]
    assert run([*arguments, "--out", str(tmp_path / "out")]) == ExitCode.ERROR
    assert "this sd3 model attends to text jointly (no attn2 layers)" in capsys.readouterr().err
    assert not (tmp_path / "out" / "result.json").exists()


def test_a_signed_scan_of_a_flux_transformer_file_attests_the_config_weights_it_loaded(data, tmp_path, capsys):
    """Flux.1 is shared as its transformer alone: the scan reads the rest from --config, and the attestation
    names those weights too, so verify notices a text encoder swapped in the config folder after signing."""
    import torch
    from safetensors.torch import save_file

    from memaudit.checkpoint import load_checkpoint

    root, train, holdout = data
    config = save_tiny_family("flux", tmp_path / "flux", seed=0)
    state = load_checkpoint(config).pipeline.transformer.state_dict()
    weights = tmp_path / "flux1-tiny.safetensors"
    save_file({key: value.contiguous() for key, value in state.items()}, weights)
    assert run(["keygen", "--out", str(tmp_path / "keys")]) == ExitCode.OK
    out, model = tmp_path / "out", ("--config", str(config))
    code = run(
        [
            *("scan", str(weights), *model, "--train", str(train), "--holdout", str(holdout)),
            *("--policy", str(root / "policy.yaml"), "--out", str(out)),
            *("--sign-key", str(tmp_path / "keys" / "memaudit-signing.key")),
        ]
    )
    assert code in (ExitCode.OK, ExitCode.FINDING), capsys.readouterr().err
    names = [item["path"] for item in json.loads((out / "result.json").read_text())["model"]["weight_files"]]
    assert names[0] == weights.name and "config/text_encoder/model.safetensors" in names
    verify = ["verify", str(out / "attestation.dsse.json"), "--key", str(tmp_path / "keys" / "memaudit-signing.pub")]
    assert run([*verify, "--model", str(weights), *model]) == ExitCode.OK
    capsys.readouterr()
    encoder = config / "text_encoder" / "model.safetensors"
    torch.manual_seed(1)
    swapped = {
        key: torch.randn_like(value)
        for key, value in load_checkpoint(config).pipeline.text_encoder.state_dict().items()
    }
    save_file(swapped, encoder)
    assert run([*verify, "--model", str(weights), *model]) != ExitCode.OK
    assert "subject config/text_encoder/model.safetensors: sha256 differs" in capsys.readouterr().err
