"""LoRA adapters fused into a base: both key layouts give the same model, and every bad adapter is a
named error before any model work."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from memaudit.checkpoint import load_checkpoint
from memaudit.errors import CheckpointError
from tests.checkpoint.lora_files import write_lora, write_network_lora


@pytest.fixture(scope="module")
def lora(tiny_pipeline, tmp_path_factory):
    return write_lora(tiny_pipeline, tmp_path_factory.mktemp("lora"))


def test_both_layouts_fuse_to_the_same_weights_the_formula_gives(tiny_folder, lora):
    diffusers_file, kohya_file = lora
    base = load_checkpoint(tiny_folder)
    given = {"d": diffusers_file, "k": kohya_file}
    fused = {layout: load_checkpoint(tiny_folder, adapters=[(path, 0.5)]) for layout, path in given.items()}
    state = {layout: checkpoint.pipeline.unet.state_dict() for layout, checkpoint in fused.items()}
    assert all(torch.equal(state["d"][key], state["k"][key]) for key in state["d"])
    layers = load_file(diffusers_file)
    prefix = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    delta = layers[f"{prefix}.lora.up.weight"] @ layers[f"{prefix}.lora.down.weight"]  # alpha = rank: scale 1
    key = prefix.removeprefix("unet.") + ".weight"
    assert torch.allclose(state["d"][key], base.pipeline.unet.state_dict()[key] + 0.5 * delta, atol=1e-6)
    records = [checkpoint.adapters[0] for checkpoint in fused.values()]
    assert [(r.layout, r.scale) for r in records] == [("diffusers", 0.5), ("kohya", 0.5)]
    assert len({base.digest, fused["d"].digest, fused["k"].digest}) == 3  # the adapter is part of the model
    rescaled = load_checkpoint(tiny_folder, adapters=[(diffusers_file, 1.0)])
    assert rescaled.digest != fused["d"].digest  # and so is its scale


def _rewritten(source, target, change):
    save_file(change(load_file(source)), target)
    return target


def test_bad_adapters_are_named(tiny_folder, lora, tmp_path):
    diffusers_file, _ = lora
    pickled = tmp_path / "adapter.bin"
    torch.save(load_file(diffusers_file), pickled)
    cases = {
        "unknown keys": (
            _rewritten(
                diffusers_file,
                tmp_path / "unknown.safetensors",
                lambda s: {k.replace("attn1.to_q", "attn9.to_q"): v for k, v in s.items()},
            ),
            "match no module of this base",
        ),
        "another base": (
            _rewritten(
                diffusers_file,
                tmp_path / "wide.safetensors",
                lambda s: {k: torch.zeros(v.shape[0], v.shape[1] * 2) if "down" in k else v for k, v in s.items()},
            ),
            "does not fit this base",
        ),
        "LyCORIS LoHa": (
            _rewritten(
                diffusers_file, tmp_path / "loha.safetensors", lambda _: {"lora_unet_x.hada_w1_a": torch.ones(1)}
            ),
            "LyCORIS LoHa adapter",
        ),
        "pickled": (pickled, "refusing to load pickle-based weights"),
        "not a file": (tmp_path / "absent.safetensors", "no such file"),
    }
    for case, (path, message) in cases.items():
        with pytest.raises(CheckpointError, match=message) as caught:
            load_checkpoint(tiny_folder, adapters=[(path, 1.0)])
        assert str(path) in str(caught.value), case


@pytest.mark.parametrize("name", ["sdxl", "sd3", "sana", "flux", "lumina2"])
def test_every_family_that_loads_loras_fuses_them_by_the_formula(name, tmp_path):
    from memaudit.checkpoint.families import BY_NAME
    from memaudit.tiny.families import save_tiny_family

    folder = save_tiny_family(name, tmp_path / "model")
    base = load_checkpoint(folder)
    module = BY_NAME[base.family].module
    path, key, delta = write_network_lora(base.pipeline, module, tmp_path / "lora")
    fused = load_checkpoint(folder, adapters=[(path, 2.0)])
    before, after = (getattr(c.pipeline, module).state_dict()[key] for c in (base, fused))
    assert torch.allclose(after, before + 2.0 * delta, atol=1e-6)
    assert fused.adapters[0].layout == "diffusers" and fused.digest != base.digest


def test_an_sdxl_adapter_in_either_layout_fuses_the_same(tmp_path):
    """kohya-ss files name SDXL's modules as SD 1.x's (lora_unet_<path>); both layouts fuse one change."""
    from memaudit.tiny.families import save_tiny_family

    folder = save_tiny_family("sdxl", tmp_path / "model")
    diffusers_file, kohya_file = write_lora(load_checkpoint(folder).pipeline, tmp_path / "lora")
    fused = [load_checkpoint(folder, adapters=[(path, 0.5)]) for path in (diffusers_file, kohya_file)]
    states = [checkpoint.pipeline.unet.state_dict() for checkpoint in fused]
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])
    base = load_checkpoint(folder).pipeline.unet.state_dict()
    assert any(not torch.equal(states[0][key], base[key]) for key in base)  # the adapter changed the UNet
    assert [checkpoint.adapters[0].layout for checkpoint in fused] == ["diffusers", "kohya"]


# kohya-ss module -> the diffusers modules it becomes (a fused qkv projection is three, its up matrix split)
FLUX_KOHYA = {
    "double_blocks_0_img_attn_proj": ["transformer_blocks.0.attn.to_out.0"],
    "double_blocks_0_img_attn_qkv": [f"transformer_blocks.0.attn.to_{part}" for part in "qkv"],
    "double_blocks_0_txt_attn_proj": ["transformer_blocks.0.attn.to_add_out"],
    "single_blocks_0_linear2": ["single_transformer_blocks.0.proj_out"],
}


def test_a_flux_adapter_in_the_kohya_layout_fuses_to_its_known_answer(tmp_path):
    """kohya-ss names Flux.1's modules in Black Forest Labs' layout (fused qkv): W + (alpha / rank) up_i down
    for each part i of the split up matrix, computed here by hand."""
    from memaudit.tiny.families import save_tiny_family

    folder = save_tiny_family("flux", tmp_path / "model")
    base = load_checkpoint(folder).pipeline.transformer.state_dict()
    generator, rank, alpha = torch.Generator().manual_seed(0), 2, 1.0
    kohya, expected = {}, {}
    for name, targets in FLUX_KOHYA.items():
        shape = base[targets[0] + ".weight"].shape
        down = torch.randn(rank, shape[1], generator=generator) * 0.1
        up = torch.randn(shape[0] * len(targets), rank, generator=generator) * 0.1
        kohya |= {f"lora_unet_{name}.lora_down.weight": down, f"lora_unet_{name}.lora_up.weight": up}
        kohya[f"lora_unet_{name}.alpha"] = torch.tensor(alpha)
        for target, part in zip(targets, up.chunk(len(targets)), strict=True):
            expected[target + ".weight"] = base[target + ".weight"] + (alpha / rank) * part @ down
    save_file(kohya, tmp_path / "kohya.safetensors")
    fused = load_checkpoint(folder, adapters=[(tmp_path / "kohya.safetensors", 1.0)])
    state = fused.pipeline.transformer.state_dict()
    assert {key for key in base if not torch.equal(base[key], state[key])} == set(expected)
    assert all(torch.allclose(state[key], value, atol=1e-6) for key, value in expected.items())
    assert fused.adapters[0].layout == "kohya"


def test_an_sd3_adapter_in_the_kohya_layout_is_named_not_dropped(tmp_path):
    """diffusers converts no kohya-ss SD 3.x names: refused as the model loads, never fused as nothing."""
    from memaudit.tiny.families import save_tiny_family

    folder = save_tiny_family("sd3", tmp_path / "model")
    width = load_checkpoint(folder).pipeline.transformer.state_dict()["transformer_blocks.0.attn.to_out.0.weight"]
    name = "lora_unet_joint_blocks_0_x_block_attn_proj"
    adapter = tmp_path / "kohya-sd3.safetensors"
    save_file({f"{name}.lora_down.weight": torch.ones(2, width.shape[1]), f"{name}.lora_up.weight": torch.ones(
        width.shape[0], 2), f"{name}.alpha": torch.tensor(2.0)}, adapter)  # fmt: skip
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(folder, adapters=[(adapter, 1.0)])
    said = str(refused.value)
    assert f"--adapter {adapter}: 1 of its 1 adapted layers match no module of this base" in said
    assert "kohya-ss keys that the StableDiffusion3Pipeline loader of diffusers does not convert" in said


def test_a_family_whose_pipeline_loads_no_lora_is_named(tiny_pipeline, lora, tmp_path):
    from memaudit.tiny.families import save_tiny_family

    folder = save_tiny_family("pixart-sigma", tmp_path / "pixart")
    with pytest.raises(CheckpointError, match="PixArtSigmaPipeline of diffusers loads no LoRA adapters"):
        load_checkpoint(folder, adapters=[(lora[0], 1.0)])
