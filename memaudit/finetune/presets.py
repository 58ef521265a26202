"""Published masks, by name.

``memcontrol-sd15``: the mask MemControl (Dutt et al., WACV 2025) found on MIMIC-CXR with SD 1.5:
SV-DIFF on every cross-attention, and on the self-attention of every block except down blocks 2-3
and up blocks 3-4. The paper numbers blocks from 1 and counts all four down and up blocks; diffusers
counts from 0, so down blocks 2-3 are ``down_blocks.1-2`` and up blocks 3-4 are ``up_blocks.2-3``.
SD 1.5 has transformer blocks in down_blocks.0-2, mid_block and up_blocks.1-3, so self-attention
trains in down_blocks.0 (2 transformer blocks), mid_block (1) and up_blocks.1 (3): 6 of 16, and
cross-attention in all 16. The preset only applies to UNets with SD 1.x's layout.
"""

from __future__ import annotations

from collections import Counter

from memaudit.checkpoint.blocks import transformer_block_names
from memaudit.errors import MemauditError
from memaudit.finetune.mask import BlockMask, attention_unit_names

SD15_BLOCK_COUNTS = {
    "down_blocks.0": 2,
    "down_blocks.1": 2,
    "down_blocks.2": 2,
    "mid_block": 1,
    "up_blocks.1": 3,
    "up_blocks.2": 3,
    "up_blocks.3": 3,
}
MEMCONTROL_SELF_ATTENTION = ("down_blocks.0", "mid_block", "up_blocks.1")


def _stage(block: str) -> str:
    parts = block.split(".")
    return parts[0] if parts[0] == "mid_block" else ".".join(parts[:2])


def memcontrol_sd15(unet):
    blocks = transformer_block_names(unet)
    if dict(Counter(_stage(block) for block in blocks)) != SD15_BLOCK_COUNTS:
        raise MemauditError(
            f"mask preset 'memcontrol-sd15' needs an SD 1.x UNet (16 transformer blocks in down_blocks.0-2, "
            f"mid_block, up_blocks.1-3); this UNet has {len(blocks)} transformer blocks"
        )
    units = tuple(attention_unit_names(unet))
    bits = tuple(unit.endswith(".attn2") or _stage(unit) in MEMCONTROL_SELF_ATTENTION for unit in units)
    return "svdiff", BlockMask(units, bits)


PRESETS = {"memcontrol-sd15": memcontrol_sd15}


def preset_mask(name: str, unet):
    """(search space, mask) of a preset."""
    return PRESETS[name](unet)
