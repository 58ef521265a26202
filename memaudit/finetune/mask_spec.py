"""Read a mask as a user writes it: "all", "none", a bit string, a preset name, or a mask.json file."""

from __future__ import annotations

import json
from pathlib import Path

from memaudit.checkpoint.blocks import transformer_block_names
from memaudit.errors import MemauditError
from memaudit.finetune.mask import BlockMask, attention_unit_names
from memaudit.finetune.presets import PRESETS, preset_mask


def parse_mask(spec: str | Path, unet) -> BlockMask:
    """A mask for ``unet`` from "all", "none", bits, a preset or a mask.json path; errors say what is wrong."""
    blocks = tuple(transformer_block_names(unet))
    attentions = tuple(attention_unit_names(unet))
    text = str(spec)
    if text == "all":
        return BlockMask(blocks, (True,) * len(blocks))
    if text == "none":
        return BlockMask(blocks, (False,) * len(blocks))
    if text in PRESETS:
        return preset_mask(text, unet)[1]
    if set(text) <= {"0", "1"} and text:
        units = {len(blocks): blocks, len(attentions): attentions}.get(len(text))
        if units is None:
            raise MemauditError(
                f"mask '{text}' has {len(text)} bits; this UNet has {len(blocks)} transformer blocks "
                f"({len(attentions)} attentions)"
            )
        return BlockMask(units, tuple(c == "1" for c in text))
    path = Path(text)
    if not path.is_file():
        raise MemauditError(
            f"mask '{text}': expected all, none, a string of {len(blocks)} bits, a preset "
            f"({', '.join(PRESETS)}), or a mask.json file"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names, bits = tuple(data["blocks"]), tuple(bool(b) for b in data["bits"])
    except (ValueError, KeyError, TypeError) as error:
        raise MemauditError(f"{path}: not a mask file (needs 'blocks' and 'bits'): {error}") from error
    if names not in (blocks, attentions):
        raise MemauditError(f"{path}: the mask's units do not match this UNet's transformer blocks or attentions")
    return BlockMask(names, bits)
