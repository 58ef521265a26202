"""Loading checkpoints from local files: both formats, digests, and the pickle refusal."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from memaudit.checkpoint import load_checkpoint, summarize
from memaudit.checkpoint.original_layout import original_state_dict
from memaudit.errors import CheckpointError


def test_folder_and_single_file_twin_have_the_same_architecture(tiny_folder, tiny_single_file):
    weights, config = tiny_single_file
    folder = summarize(load_checkpoint(tiny_folder))
    single = summarize(load_checkpoint(weights, config_dir=config))
    assert folder.format == "diffusers" and single.format == "single-file"
    assert folder.architecture() == single.architecture()
    assert [block.name for block in folder.unet_transformer_blocks][:3] == [
        "down_blocks.0.attentions.0.transformer_blocks.0",
        "down_blocks.1.attentions.0.transformer_blocks.0",
        "mid_block.attentions.0.transformer_blocks.0",
    ]
    assert folder.image_size == 16 and folder.latent_size == 8 and folder.vae_scale_factor == 2


def test_single_file_twin_loads_bit_identical_weights(tiny_pipeline, tiny_single_file):
    weights, config = tiny_single_file
    loaded = load_checkpoint(weights, config_dir=config).pipeline
    for name in ("unet", "vae", "text_encoder"):
        expected = getattr(tiny_pipeline, name).state_dict()
        actual = getattr(loaded, name).state_dict()
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), f"{name}.{key}"


def test_every_original_layout_key_is_unique(tiny_pipeline):
    state = original_state_dict(tiny_pipeline)
    total = sum(len(getattr(tiny_pipeline, n).state_dict()) for n in ("unet", "vae", "text_encoder"))
    assert len(state) == total
    assert "model.diffusion_model.input_blocks.0.0.weight" in state
    assert "first_stage_model.encoder.mid.attn_1.q.weight" in state
    assert state["first_stage_model.encoder.mid.attn_1.q.weight"].dim() == 4


def test_weight_digests_are_the_sha256_of_each_file(tiny_folder):
    checkpoint = load_checkpoint(tiny_folder)
    paths = sorted(weight.path for weight in checkpoint.weight_files)
    assert paths == [
        "text_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]
    for weight in checkpoint.weight_files:
        data = (tiny_folder / weight.path).read_bytes()
        assert weight.sha256 == hashlib.sha256(data).hexdigest()
        assert weight.size_bytes == len(data)


def test_single_file_needs_a_local_config_folder(tiny_single_file):
    weights, _ = tiny_single_file
    with pytest.raises(CheckpointError, match="needs --config"):
        load_checkpoint(weights)


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth"])
def test_pickle_single_files_are_refused_before_reading(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"not even a pickle")
    with pytest.raises(CheckpointError, match=r"pickle.*arbitrary code") as caught:
        load_checkpoint(path, config_dir=tmp_path)
    assert str(path) in str(caught.value)


@pytest.fixture(scope="module")
def pickle_folder(tiny_pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pickled") / "model"
    tiny_pipeline.save_pretrained(folder, safe_serialization=False)
    return folder


def test_folder_with_only_pickle_weights_is_refused_naming_the_file(pickle_folder):
    with pytest.raises(CheckpointError, match=r"\.bin.*pickle"):
        load_checkpoint(pickle_folder)


def test_allow_pickle_loads_and_digests_the_pickle_files(pickle_folder, tiny_pipeline):
    checkpoint = load_checkpoint(pickle_folder, allow_pickle=True)
    # transformers always writes safetensors for the text encoder; diffusers wrote pickles.
    assert sorted(weight.path for weight in checkpoint.weight_files) == [
        "text_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "vae/diffusion_pytorch_model.bin",
    ]
    expected = tiny_pipeline.unet.state_dict()
    actual = checkpoint.pipeline.unet.state_dict()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)


def test_unused_pickle_beside_safetensors_is_not_loaded(tiny_folder, tmp_path):
    folder = shutil.copytree(tiny_folder, tmp_path / "model")
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"never unpickled")
    checkpoint = load_checkpoint(folder)
    assert not any(weight.path.endswith(".bin") for weight in checkpoint.weight_files)


def test_broken_folder_is_a_checkpoint_error_naming_it(tiny_folder, tmp_path):
    folder = shutil.copytree(tiny_folder, tmp_path / "model")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="cannot load checkpoint") as caught:
        load_checkpoint(folder)
    assert str(folder) in str(caught.value)


def test_folder_without_model_index_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="model_index.json"):
        load_checkpoint(tmp_path)
