"""A block mask: one bit per UNet transformer block, in the order `memaudit inspect` prints.

Written as "all", "none", a bit string ("0110101"), or a mask.json file holding the block names with
their bits (so a mask can never be applied to a UNet with a different layout by accident).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memaudit.checkpoint.blocks import transformer_block_names
from memaudit.errors import MemauditError


@dataclass(frozen=True)
class BlockMask:
    blocks: tuple[str, ...]
    bits: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.blocks) != len(self.bits):
            raise MemauditError(f"mask has {len(self.bits)} bits for {len(self.blocks)} transformer blocks")

    @property
    def selected(self) -> list[str]:
        return [name for name, bit in zip(self.blocks, self.bits, strict=True) if bit]

    @property
    def all_selected(self) -> bool:
        return all(self.bits)

    def as_string(self) -> str:
        return "".join("1" if bit else "0" for bit in self.bits)

    def to_json(self) -> str:
        return json.dumps({"blocks": list(self.blocks), "bits": [int(b) for b in self.bits]}, indent=2) + "\n"


def parse_mask(spec: str | Path, unet) -> BlockMask:
    """A mask for ``unet`` from "all", "none", a bit string or a mask.json path; errors say what is wrong."""
    blocks = tuple(transformer_block_names(unet))
    text = str(spec)
    if text == "all":
        return BlockMask(blocks, (True,) * len(blocks))
    if text == "none":
        return BlockMask(blocks, (False,) * len(blocks))
    if set(text) <= {"0", "1"} and text:
        if len(text) != len(blocks):
            raise MemauditError(f"mask '{text}' has {len(text)} bits; this UNet has {len(blocks)} transformer blocks")
        return BlockMask(blocks, tuple(c == "1" for c in text))
    path = Path(text)
    if not path.is_file():
        raise MemauditError(f"mask '{text}': expected all, none, a string of {len(blocks)} bits, or a mask.json file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names, bits = tuple(data["blocks"]), tuple(bool(b) for b in data["bits"])
    except (ValueError, KeyError, TypeError) as error:
        raise MemauditError(f"{path}: not a mask file (needs 'blocks' and 'bits'): {error}") from error
    if names != blocks:
        raise MemauditError(f"{path}: the mask's blocks do not match this UNet's transformer blocks")
    return BlockMask(blocks, bits)
