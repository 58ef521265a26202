"""A denoiser shared as one file on its own (as Flux.1's and SD 3.5's transformers are), over a --config
folder that holds the rest of the pipeline: loaded, digested and refused like any checkpoint."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import memaudit  # noqa: F401  (offline and torchvision guards before diffusers is imported)
from memaudit.checkpoint import load_checkpoint
from memaudit.errors import CheckpointError
from memaudit.tiny.families import save_tiny_family

MODULE = {"sdxl": "unet", "sd3": "transformer", "flux": "transformer"}


@pytest.fixture(scope="module", params=sorted(MODULE))
def denoiser_file(request, tmp_path_factory):
    """(family, its --config folder, a file with the folder's denoiser weights scaled by 1.5: another model)."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    folder = save_tiny_family(name, root / "config", seed=0)
    reference = load_checkpoint(folder)
    state = {
        key: (value * 1.5).contiguous() for key, value in getattr(reference.pipeline, MODULE[name]).state_dict().items()
    }
    save_file(state, root / f"{name}-{MODULE[name]}.safetensors")
    return name, folder, root / f"{name}-{MODULE[name]}.safetensors", reference


def test_a_denoiser_file_loads_its_own_weights_and_the_rest_from_the_config_folder(denoiser_file):
    name, folder, path, reference = denoiser_file
    loaded = load_checkpoint(path, config_dir=folder)
    assert loaded.family == name and loaded.format == "single-file"
    for component, module in reference.pipeline.components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        want = module.state_dict()
        got = loaded.pipeline.components[component].state_dict()
        factor = 1.5 if component == MODULE[name] else 1.0  # only the denoiser is the file's
        assert got.keys() == want.keys(), component
        assert all(torch.equal(got[key], want[key] * factor) for key in want), component


def test_the_config_folders_weights_it_loaded_are_named_and_digested(denoiser_file, tmp_path):
    """Every weight file that made the model is in the record (the attestation's subjects); a text encoder
    changed in the config folder is another model, so another digest."""
    name, folder, path, _ = denoiser_file
    loaded = load_checkpoint(path, config_dir=folder)
    names = [record.path for record in loaded.weight_files]
    assert names[0] == path.name
    assert "config/vae/diffusion_pytorch_model.safetensors" in names
    assert "config/text_encoder/model.safetensors" in names
    assert not any(item.startswith(f"config/{MODULE[name]}/") for item in names)  # the file's, not the folder's
    encoder = folder / "text_encoder" / "model.safetensors"
    original = encoder.read_bytes()
    try:
        changed = load_checkpoint(path, config_dir=folder)
        encoder.write_bytes(original[:-8] + bytes(8))  # a few bytes of one tensor's data
        assert load_checkpoint(path, config_dir=folder).digest != changed.digest
    finally:
        encoder.write_bytes(original)


def test_a_file_with_neither_the_pipeline_nor_its_denoiser_is_named(denoiser_file, tmp_path):
    name, folder, _, _ = denoiser_file
    stranger = tmp_path / "stranger.safetensors"
    save_file({"some.other.weight": torch.zeros(3, 3)}, stranger)
    said = rf"{stranger}: neither a whole .* nor its {MODULE[name]} alone .* in a layout diffusers reads"
    with pytest.raises(CheckpointError, match=said):
        load_checkpoint(stranger, config_dir=folder)


def test_inspect_reads_a_denoiser_file_and_exits_2_on_a_stranger(denoiser_file, tmp_path, capsys):
    from memaudit.cli import run
    from memaudit.errors import ExitCode

    _, folder, path, _ = denoiser_file
    assert run(["inspect", str(path), "--config", str(folder)]) == ExitCode.OK
    assert "single-file" in capsys.readouterr().out
    stranger = tmp_path / "stranger.safetensors"
    save_file({"some.other.weight": torch.zeros(3, 3)}, stranger)
    assert run(["inspect", str(stranger), "--config", str(folder)]) == ExitCode.ERROR
    assert f"{stranger}: neither a whole" in capsys.readouterr().err
