"""A mask over the UNet's trainable units, in the order `memaudit inspect` prints.

A unit is a transformer block (block masks: what the search explores) or, finer, one attention of a
transformer block (``<block>.attn1`` self-attention, ``<block>.attn2`` cross-attention: what the
MemControl paper's published mask needs). Written as "all", "none", a bit string (one bit per block or
one per attention), a preset name, or a mask.json file holding the unit names with their bits (so a
mask can never be applied to a UNet with a different layout by accident).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from memaudit.checkpoint.blocks import transformer_block_names
from memaudit.errors import MemauditError

# A block's attentions: attn1 (self) and attn2 (cross) in UNets, PixArt and Sana; attn (joint or
# single-stream over image and text) in SD 3.x, Flux and Lumina 2 (SD 3.5's dual blocks add attn2).
ATTENTIONS = ("attn", "attn1", "attn2")


@dataclass(frozen=True)
class BlockMask:
    blocks: tuple[str, ...]  # unit names: transformer blocks, or attentions of transformer blocks
    bits: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.blocks) != len(self.bits):
            raise MemauditError(f"mask has {len(self.bits)} bits for {len(self.blocks)} units")

    @property
    def selected(self) -> list[str]:
        return [name for name, bit in zip(self.blocks, self.bits, strict=True) if bit]

    @property
    def all_selected(self) -> bool:
        return all(self.bits)

    @property
    def per_attention(self) -> bool:
        return bool(self.blocks) and all(name.rsplit(".", 1)[-1] in ATTENTIONS for name in self.blocks)

    def as_string(self) -> str:
        return "".join("1" if bit else "0" for bit in self.bits)

    def to_json(self) -> str:
        return json.dumps({"blocks": list(self.blocks), "bits": [int(b) for b in self.bits]}, indent=2) + "\n"


def attention_unit_names(unet) -> list[str]:
    """``<block>.attn1`` and ``<block>.attn2`` of every transformer block, in mask order."""
    modules = dict(unet.named_modules())
    return [
        f"{block}.{attention}"
        for block in transformer_block_names(unet)
        for attention in ATTENTIONS
        if modules.get(f"{block}.{attention}") is not None
    ]
