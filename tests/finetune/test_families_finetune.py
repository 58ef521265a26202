"""Fine-tuning every family's denoiser: each PEFT method starts where the base is and merges exactly
(through the family's own forward pass), and `memaudit finetune` writes a model of the same family."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from memaudit.checkpoint import load_checkpoint
from memaudit.cli import run
from memaudit.denoiser import denoiser_for
from memaudit.errors import ExitCode
from memaudit.finetune.mask_spec import parse_mask
from memaudit.finetune.methods import METHODS, apply_method
from memaudit.tiny.families import save_tiny_family
from memaudit.tiny.memorizer import build_memorizer

FAMILIES = ["sdxl", "sd3", "pixart-sigma", "sana", "flux", "lumina2"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {name: save_tiny_family(name, root / name) for name in FAMILIES}


def _output(denoiser, cond):
    latents = torch.randn(2, *denoiser.latent_shape(8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return denoiser.forward(latents, torch.tensor([100.0, 700.0]), cond)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_starts_at_the_base_and_merges_exactly(saved, family, name):
    denoiser = denoiser_for(load_checkpoint(saved[family]).pipeline)
    cond = denoiser.encode_prompts(["left pleural effusion", "cardiomegaly"])
    expected = _output(denoiser, cond)
    network = denoiser.module
    original = copy.deepcopy(network.state_dict())
    mask = parse_mask("all", network)
    method = apply_method(name, network, mask)
    assert (_output(denoiser, cond) - expected).abs().max() < 1e-4, "a fresh method changes the model"
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in method.trainable_parameters().values():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=generator))
    trained = _output(denoiser, cond)
    merged = method.merge()
    setattr(denoiser.pipeline, denoiser.module_name, merged)
    assert set(merged.state_dict()) == set(original)  # a plain diffusers network again
    assert (_output(denoiser, cond) - trained).abs().max() < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_memaudit_finetune_writes_a_model_of_the_same_family(saved, family, tiny_pipeline, tmp_path, capsys):
    _, train, _, _ = build_memorizer(tiny_pipeline, tmp_path / "data")
    out = tmp_path / "out"
    arguments = ["finetune", str(saved[family]), "--train", str(train), "--method", "difffit", "--mask", "all"]
    code = run([*arguments, "--steps", "2", "--batch-size", "2", "--out", str(out)])
    assert code == ExitCode.OK, capsys.readouterr().err
    record = json.loads((out / "method.json").read_text())
    assert record["steps"] == 2 and record["trainable_parameters"] > 0
    assert load_checkpoint(out / "model").family == load_checkpoint(saved[family]).family


@pytest.mark.parametrize("family", FAMILIES)
def test_remediate_searches_the_denoisers_blocks(saved, family, tiny_pipeline, tmp_path, capsys):
    """MemControl on every family: the mask it chooses has one bit per block of the denoiser, in mask order."""
    from memaudit.checkpoint import summarize
    from tests.remediate.conftest import POLICY

    _, train, holdout, _ = build_memorizer(tiny_pipeline, tmp_path / "data", planted=2, generic=4, holdout=6)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("batch_size: 16}", "batch_size: 16, resolution: 64}"))
    model, out = saved[family], tmp_path / "out"
    arguments = ["remediate", str(model), "--base", str(model), "--train", str(train), "--holdout", str(holdout)]
    code = run([*arguments, "--policy", str(policy), "--out", str(out), "--search-anyway"])
    assert code == ExitCode.OK, capsys.readouterr().err
    record = json.loads((out / "remediation.json").read_text())
    blocks = summarize(load_checkpoint(model)).unet_transformer_blocks
    assert len(record["mask"]) == len(blocks) and record["space"] in ("svdiff", "difffit")
    assert load_checkpoint(out / "remediated" / "model").family == load_checkpoint(model).family


@pytest.mark.parametrize("family", ["sd", "sd3"])
def test_a_lora_fine_tune_is_also_an_adapter_file_that_loads_onto_its_base(
    saved, family, tiny_pipeline, tiny_folder, tmp_path, capsys
):
    base = tiny_folder if family == "sd" else saved[family]
    _, train, _, _ = build_memorizer(tiny_pipeline, tmp_path / "data")
    out = tmp_path / "out"
    arguments = ["finetune", str(base), "--train", str(train), "--method", "lora", "--mask", "all"]
    assert run([*arguments, "--steps", "3", "--batch-size", "2", "--out", str(out)]) == ExitCode.OK
    assert json.loads((out / "method.json").read_text())["lora_file"] == "lora.safetensors"
    merged = load_checkpoint(out / "model")
    adapted = load_checkpoint(base, adapters=[(out / "lora.safetensors", 1.0)])
    module = denoiser_for(merged.pipeline).module_name
    ours, theirs = (getattr(c.pipeline, module).state_dict() for c in (merged, adapted))
    assert ours.keys() == theirs.keys()
    assert max(float((ours[k] - theirs[k]).abs().max()) for k in ours) < 1e-5
    assert any(not torch.equal(ours[k], getattr(load_checkpoint(base).pipeline, module).state_dict()[k]) for k in ours)
