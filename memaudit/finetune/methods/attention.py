"""`attention`: train the self- and cross-attention layers (attn1, attn2: q, k, v, out) of selected blocks
(or the selected attentions of a per-attention mask)."""

from __future__ import annotations

from torch import nn

from memaudit.finetune.mask import BlockMask
from memaudit.finetune.methods.base import attention_modules, freeze


class AttentionTuning:
    name = "attention"

    def __init__(self, unet: nn.Module, mask: BlockMask) -> None:
        self.unet, self.mask = unet, mask
        freeze(unet)
        self._parameters = {}
        for path, module in attention_modules(unet, mask).items():
            for name, parameter in module.named_parameters():
                parameter.requires_grad_(True)
                self._parameters[f"{path}.{name}"] = parameter

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return self._parameters

    def merge(self) -> nn.Module:
        freeze(self.unet)
        return self.unet
