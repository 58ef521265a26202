"""Trainable parameters of each PEFT method on Stable Diffusion 1.5's UNet, from its config alone.

    .venv/bin/python bench/peft_counts.py

No weights are needed: the UNet is built on PyTorch's meta device (shapes only). Prints the count
and the fraction of UNet parameters for each method with every block selected, and for SV-DIFF with
the MemControl paper's discovered mask (the `memcontrol-sd15` preset); the paper reports training
0.019% of UNet parameters with its mask.
"""

from __future__ import annotations

import memaudit  # noqa: F401  (runtime guards)

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
}


def main() -> None:
    import torch
    from diffusers import UNet2DConditionModel

    from memaudit.finetune.mask_spec import parse_mask
    from memaudit.finetune.methods import METHODS, apply_method, trainable_count
    from memaudit.finetune.presets import preset_mask

    def fresh():
        with torch.device("meta"):
            return UNet2DConditionModel(**SD15_UNET)

    total = sum(p.numel() for p in fresh().parameters())
    print(f"SD 1.5 UNet: {total:,} parameters, 16 transformer blocks")
    for name in METHODS:
        unet = fresh()
        count = trainable_count(apply_method(name, unet, parse_mask("all", unet)))
        print(f"  {name:<10} all blocks   {count:>13,}  {count / total:9.4%}")
    unet = fresh()
    space, mask = preset_mask("memcontrol-sd15", unet)
    count = trainable_count(apply_method(space, unet, mask))
    print(
        f"  {space:<10} memcontrol-sd15 preset ({len(mask.selected)} of {len(mask.blocks)} attentions) {count:>9,}  "
        f"{count / total:9.4%}  (paper: 0.019%)"
    )


if __name__ == "__main__":
    main()
