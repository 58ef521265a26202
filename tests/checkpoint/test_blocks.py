"""The UNet transformer-block order that PEFT masks use."""

from __future__ import annotations

from memaudit.checkpoint import transformer_block_names

# Stable Diffusion 1.5's UNet config (architecture only; no weights are needed or fetched).
SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}


def test_sd15_has_sixteen_blocks_down_mid_up():
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    with init_empty_weights():
        unet = UNet2DConditionModel(**SD15_UNET)
    names = transformer_block_names(unet)
    expected = (
        [f"down_blocks.{b}.attentions.{a}.transformer_blocks.0" for b in range(3) for a in range(2)]
        + ["mid_block.attentions.0.transformer_blocks.0"]
        + [f"up_blocks.{b}.attentions.{a}.transformer_blocks.0" for b in (1, 2, 3) for a in range(3)]
    )
    assert names == expected


def test_tiny_unet_block_order(tiny_pipeline):
    assert transformer_block_names(tiny_pipeline.unet) == [
        "down_blocks.0.attentions.0.transformer_blocks.0",
        "down_blocks.1.attentions.0.transformer_blocks.0",
        "mid_block.attentions.0.transformer_blocks.0",
        "up_blocks.1.attentions.0.transformer_blocks.0",
        "up_blocks.1.attentions.1.transformer_blocks.0",
        "up_blocks.2.attentions.0.transformer_blocks.0",
        "up_blocks.2.attentions.1.transformer_blocks.0",
    ]
