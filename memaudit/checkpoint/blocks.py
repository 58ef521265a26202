"""The denoiser's transformer blocks, in the one order memaudit uses for block masks everywhere.

A UNet (SD 1.x/2.x, SDXL): down blocks, then the mid block, then up blocks; inside each, attentions then
their transformer blocks by index. SD 1.5 has 16 (down 0-2 x2, mid x1, up 1-3 x3); a block is named by
its module path, e.g. ``down_blocks.0.attentions.1.transformer_blocks.0``.

A diffusion transformer (SD 3.x, PixArt, Sana, Flux): its sequence of blocks in the order they run,
``transformer_blocks.0`` onwards, then Flux's single-stream ``single_transformer_blocks`` (Lumina 2:
``layers``; its refiner blocks, which read the image or the text alone, are not mask units).
"""

from __future__ import annotations

import re

from torch import nn

_SECTION_ORDER = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}
_INDEX = re.compile(r"\d+")
# A DiT's block lists, in running order (Lumina 2 calls its main sequence ``layers``).
_SEQUENCES = ("transformer_blocks", "single_transformer_blocks", "layers")


def _sort_key(path: str) -> tuple[int, list[int]]:
    section = path.split(".", 1)[0]
    return _SECTION_ORDER.get(section, 3), [int(number) for number in _INDEX.findall(path)]


def transformer_block_names(network: nn.Module) -> list[str]:
    """Module paths of every transformer block of a UNet or a diffusion transformer, in mask order."""
    from diffusers.models.attention import BasicTransformerBlock

    if any(isinstance(getattr(network, name, None), nn.ModuleList) for name in _SEQUENCES):
        return [f"{name}.{index}" for name in _SEQUENCES for index in range(len(getattr(network, name, None) or []))]
    names = [name for name, module in network.named_modules() if isinstance(module, BasicTransformerBlock)]
    return sorted(names, key=_sort_key)


def reads_text(block: nn.Module) -> bool:
    """Whether a block attends to the text. A UNet's block does through its cross-attention (``attn2``;
    some have none); every block of a DiT's main sequences does, by cross-attention (PixArt, Sana),
    joint attention over text and image tokens (SD 3.x, Flux) or one stream over both (Flux's single
    blocks, Lumina 2)."""
    from diffusers.models.attention import BasicTransformerBlock

    if isinstance(block, BasicTransformerBlock):
        attention = getattr(block, "attn2", None)
        return attention is not None and bool(attention.is_cross_attention)
    return True


def block_width(block: nn.Module) -> int:
    """The block's hidden width: its first normalisation's, else its first linear layer's input."""
    for module in block.modules():
        if isinstance(module, nn.LayerNorm | nn.GroupNorm):
            return int(module.normalized_shape[0] if isinstance(module, nn.LayerNorm) else module.num_channels)
        if isinstance(module, nn.Linear):
            return int(module.in_features)
    raise ValueError(f"{type(block).__name__} has no normalisation or linear layer to read a width from")
