"""`full`: train every parameter of the selected transformer blocks; mask "all" is the paper's full
fine-tuning baseline and trains the entire UNet (resnets, convolutions and embeddings too)."""

from __future__ import annotations

from torch import nn

from memaudit.finetune.mask import BlockMask
from memaudit.finetune.methods.base import block_modules, freeze


class FullFineTune:
    name = "full"

    def __init__(self, unet: nn.Module, mask: BlockMask) -> None:
        self.unet, self.mask = unet, mask
        freeze(unet)
        if mask.all_selected:
            self._parameters = dict(unet.named_parameters())
        else:
            self._parameters = {
                f"{block}.{name}": parameter
                for block, module in block_modules(unet, mask).items()
                for name, parameter in module.named_parameters()
            }
        for parameter in self._parameters.values():
            parameter.requires_grad_(True)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return self._parameters

    def merge(self) -> nn.Module:
        freeze(self.unet)
        return self.unet
