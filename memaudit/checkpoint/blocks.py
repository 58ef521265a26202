"""The UNet's transformer blocks, in the one order memaudit uses for block masks everywhere.

Order: down blocks, then the mid block, then up blocks; inside each, attentions then their
transformer blocks by index. SD 1.5 has 16 (down 0-2 x2, mid x1, up 1-3 x3). A block is named by its
module path, e.g. ``down_blocks.0.attentions.1.transformer_blocks.0``.
"""

from __future__ import annotations

import re

from torch import nn

_SECTION_ORDER = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}
_INDEX = re.compile(r"\d+")


def _sort_key(path: str) -> tuple[int, list[int]]:
    section = path.split(".", 1)[0]
    return _SECTION_ORDER.get(section, 3), [int(number) for number in _INDEX.findall(path)]


def transformer_block_names(unet: nn.Module) -> list[str]:
    """Module paths of every ``BasicTransformerBlock`` in the UNet, in mask order."""
    from diffusers.models.attention import BasicTransformerBlock

    names = [name for name, module in unet.named_modules() if isinstance(module, BasicTransformerBlock)]
    return sorted(names, key=_sort_key)
