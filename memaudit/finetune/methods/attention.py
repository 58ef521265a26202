"""`attention`: train the self- and cross-attention layers (attn1, attn2: q, k, v, out) of selected blocks."""

from __future__ import annotations

from torch import nn

from memaudit.finetune.mask import BlockMask
from memaudit.finetune.methods.base import block_modules, freeze

ATTENTIONS = ("attn1", "attn2")


class AttentionTuning:
    name = "attention"

    def __init__(self, unet: nn.Module, mask: BlockMask) -> None:
        self.unet, self.mask = unet, mask
        freeze(unet)
        self._parameters = {}
        for block_name, block in block_modules(unet, mask).items():
            for attention in ATTENTIONS:
                module = getattr(block, attention, None)
                if module is None:
                    continue
                for name, parameter in module.named_parameters():
                    parameter.requires_grad_(True)
                    self._parameters[f"{block_name}.{attention}.{name}"] = parameter

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return self._parameters

    def merge(self) -> nn.Module:
        freeze(self.unet)
        return self.unet
