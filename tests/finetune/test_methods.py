"""PEFT methods on the tiny UNet: start where the base is, count exactly, merge exactly, mask strictly."""

from __future__ import annotations

import copy

import pytest
import torch

from memaudit.errors import MemauditError
from memaudit.finetune.mask_spec import parse_mask
from memaudit.finetune.methods import METHODS, apply_method, trainable_count

# Tiny UNet: transformer blocks of width 32, 64, 64, 64, 64, 32, 32; text width c = 32.
WIDTHS, TEXT = [32, 64, 64, 64, 64, 32, 32], 32


def _inputs():
    generator = torch.Generator().manual_seed(0)
    return (
        torch.randn(2, 4, 8, 8, generator=generator),
        torch.tensor([10, 700]),
        torch.randn(2, 7, TEXT, generator=generator),
    )


def _run(unet):
    with torch.no_grad():
        return unet(*_inputs()).sample


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_fresh_method_reproduces_the_base_model(tiny_pipeline, name):
    unet = copy.deepcopy(tiny_pipeline.unet)
    expected = _run(unet)
    apply_method(name, unet, parse_mask("all", unet))
    assert (_run(unet) - expected).abs().max() < 1e-5


@pytest.mark.parametrize("name", sorted(METHODS))
def test_merging_keeps_what_was_trained(tiny_pipeline, name):
    unet = copy.deepcopy(tiny_pipeline.unet)
    method = apply_method(name, unet, parse_mask("1011001", unet))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in method.trainable_parameters().values():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=generator))
    trained = _run(unet)
    merged = method.merge()
    assert type(merged).__name__ == "UNet2DConditionModel"
    assert not any(p.requires_grad for p in merged.parameters())
    assert set(merged.state_dict()) == set(tiny_pipeline.unet.state_dict())  # a plain diffusers UNet again
    assert (_run(merged) - trained).abs().max() < 1e-5


def _hand_counts(d: int, c: int = TEXT, rank: int = 4) -> dict[str, int]:
    """Per transformer block of width d (GEGLU feed-forward 4d, no q/k/v bias)."""
    attention = (4 * d * d + d) + (2 * d * d + 2 * c * d + d)
    return {
        "attention": attention,
        "svdiff": 4 * d + (2 * d + 2 * min(d, c)) + (d + d),  # min(out, in) per linear layer
        "difffit": 8 * d + 3 * d + (3 * d + d + d + 8 * d + d),  # q/k/v/out scales, branches, biases
        "lora": rank * (8 * d + 6 * d + 2 * c),
    }


@pytest.mark.parametrize("name", ["attention", "svdiff", "difffit", "lora"])
@pytest.mark.parametrize("bits", ["1111111", "0100001", "0000000"])
def test_trainable_counts_equal_hand_counts(tiny_pipeline, name, bits):
    unet = copy.deepcopy(tiny_pipeline.unet)
    method = apply_method(name, unet, parse_mask(bits, unet))
    expected = sum(_hand_counts(d)[name] for d, bit in zip(WIDTHS, bits, strict=True) if bit == "1")
    assert trainable_count(method) == expected
    # nothing else in the UNet trains (DiffFit's scales live beside it, in the method)
    trainable = {id(p) for p in method.trainable_parameters().values()}
    assert all(id(p) in trainable for p in unet.parameters() if p.requires_grad)


def test_full_with_all_trains_the_whole_unet(tiny_pipeline):
    unet = copy.deepcopy(tiny_pipeline.unet)
    assert trainable_count(apply_method("full", unet, parse_mask("all", unet))) == 1_466_500
    partial = copy.deepcopy(tiny_pipeline.unet)
    block_parameters = 21_024 + 78_912  # blocks 0 and 1, as `memaudit inspect` lists them
    assert trainable_count(apply_method("full", partial, parse_mask("1100000", partial))) == block_parameters


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("101", "has 3 bits; this UNet has 7 transformer blocks"),
        ("abc", "expected all, none, a string of 7 bits, a preset \\(memcontrol-sd15\\), or a mask.json file"),
        ("memcontrol-sd15", "needs an SD 1.x UNet .* this UNet has 7 transformer blocks"),
    ],
)
def test_bad_masks_are_explained(tiny_pipeline, spec, message):
    with pytest.raises(MemauditError, match=message):
        parse_mask(spec, tiny_pipeline.unet)


def test_mask_json_round_trip_and_layout_check(tiny_pipeline, tmp_path):
    mask = parse_mask("0110011", tiny_pipeline.unet)
    (tmp_path / "mask.json").write_text(mask.to_json())
    assert parse_mask(tmp_path / "mask.json", tiny_pipeline.unet) == mask
    (tmp_path / "other.json").write_text(mask.to_json().replace("down_blocks.0", "down_blocks.9"))
    with pytest.raises(MemauditError, match="do not match this UNet"):
        parse_mask(tmp_path / "other.json", tiny_pipeline.unet)


def test_unknown_method(tiny_pipeline):
    with pytest.raises(MemauditError, match="unknown method 'dora'; available: full, svdiff"):
        apply_method("dora", tiny_pipeline.unet, parse_mask("all", tiny_pipeline.unet))


def _hand_attention_counts(d: int, c: int = TEXT, rank: int = 4) -> dict[str, tuple[int, int]]:
    """(attn1, attn2) of a transformer block of width d, for a per-attention mask."""
    return {
        "attention": (4 * d * d + d, 2 * d * d + 2 * c * d + d),
        "svdiff": (4 * d, 2 * d + 2 * min(d, c)),
        "difffit": (6 * d, 6 * d),  # q/k/v/out scales, the branch scale, the out bias
        "lora": (rank * 8 * d, rank * (6 * d + 2 * c)),
    }


@pytest.mark.parametrize("name", ["attention", "svdiff", "difffit", "lora"])
def test_per_attention_masks_count_exactly(tiny_pipeline, name):
    bits = "10" * 3 + "01" * 2 + "11" * 2  # 14 bits: attn1 and attn2 of 7 blocks
    unet = copy.deepcopy(tiny_pipeline.unet)
    mask = parse_mask(bits, unet)
    assert mask.per_attention and mask.selected[0] == "down_blocks.0.attentions.0.transformer_blocks.0.attn1"
    method = apply_method(name, unet, mask)
    expected = sum(
        count
        for d, pair in zip(WIDTHS, zip(bits[::2], bits[1::2], strict=True), strict=True)
        for count, bit in zip(_hand_attention_counts(d)[name], pair, strict=True)
        if bit == "1"
    )
    assert trainable_count(method) == expected
    trained = {id(p) for p in method.trainable_parameters().values()}
    assert all(id(p) in trained for p in unet.parameters() if p.requires_grad)


def test_the_memcontrol_preset_on_the_sd15_layout():
    from diffusers import UNet2DConditionModel

    from memaudit.finetune.presets import preset_mask

    with torch.device("meta"):
        unet = UNet2DConditionModel(cross_attention_dim=768)  # diffusers' defaults are SD 1.x's layout
    space, mask = preset_mask("memcontrol-sd15", unet)
    assert space == "svdiff" and len(mask.blocks) == 32 and mask.per_attention
    assert sum(name.endswith("attn2") for name in mask.selected) == 16
    self_attention = [name for name in mask.selected if name.endswith("attn1")]
    assert [name.split(".attentions")[0] for name in self_attention] == ["down_blocks.0"] * 2 + ["mid_block"] + [
        "up_blocks.1"
    ] * 3


@pytest.mark.parametrize(
    ("blocks", "sizes"),
    [(7, [1] * 7), (16, [1] * 16), (28, [2] * 12 + [1] * 4), (70, [5] * 6 + [4] * 10), (17, [2] + [1] * 15)],
)
def test_search_units_are_contiguous_runs_of_blocks(blocks, sizes):
    from memaudit.finetune.mask import expand_units, search_units

    units = search_units(blocks)
    assert [len(unit) for unit in units] == sizes
    assert [index for unit in units for index in unit] == list(range(blocks))  # every block once, in order
    bits = tuple(i % 2 == 0 for i in range(len(units)))
    assert expand_units(bits, units) == tuple(bit for bit, size in zip(bits, sizes, strict=True) for _ in range(size))
