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


# The MemControl search explores one bit per unit; SD 1.5's UNet has 16 transformer blocks, so a deeper
# denoiser (PixArt-Sigma's 28 blocks, SDXL's 70) is searched over 16 contiguous runs of blocks, which
# keeps the search space the paper's size (2^16 masks) whatever the depth.
SEARCH_UNITS = 16


def search_units(blocks: int, *, limit: int = SEARCH_UNITS) -> list[range]:
    """Contiguous runs of block indices, one per search bit: each block alone up to ``limit`` blocks,
    else ``limit`` runs whose lengths differ by at most one (the longer runs first)."""
    if blocks < 1 or limit < 1:
        raise ValueError(f"need at least one block and one unit, got {blocks} and {limit}")
    count = min(blocks, limit)
    size, extra = divmod(blocks, count)
    starts = [unit * size + min(unit, extra) for unit in range(count + 1)]
    return [range(starts[unit], starts[unit + 1]) for unit in range(count)]


def expand_units(bits: tuple[bool, ...], units: list[range]) -> tuple[bool, ...]:
    """One bit per block from one bit per unit."""
    if len(bits) != len(units):
        raise ValueError(f"{len(bits)} bits for {len(units)} units")
    return tuple(bit for bit, unit in zip(bits, units, strict=True) for _ in unit)
