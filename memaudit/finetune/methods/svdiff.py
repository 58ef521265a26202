"""`svdiff`: spectral shifts (Han et al., SVDiff). Each linear or convolution weight of a selected
block becomes W = U diag(ReLU(s + delta)) V^T with U, s, V from W's SVD, frozen, and delta trained,
starting at 0 (so the model starts exactly where it was, up to SVD round-off).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from memaudit.finetune.mask import BlockMask
from memaudit.finetune.methods.base import block_modules, freeze


class SpectralShift(nn.Module):
    """A parametrization of a weight by its singular values plus a trainable shift."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.shape = tuple(weight.shape)
        matrix = weight.detach().reshape(self.shape[0], -1).double()
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
        self.register_buffer("u", u.to(weight.dtype))
        self.register_buffer("s", s.to(weight.dtype))
        self.register_buffer("vh", vh.to(weight.dtype))
        self.delta = nn.Parameter(torch.zeros_like(self.s))

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return ((self.u * torch.relu(self.s + self.delta)) @ self.vh).reshape(self.shape)


class SVDiff:
    name = "svdiff"

    def __init__(self, unet: nn.Module, mask: BlockMask) -> None:
        self.unet, self.mask = unet, mask
        freeze(unet)
        self._layers: dict[str, nn.Module] = {}
        for block_name, block in block_modules(unet, mask).items():
            for name, module in block.named_modules():
                if isinstance(module, nn.Linear | nn.Conv2d):
                    parametrize.register_parametrization(module, "weight", SpectralShift(module.weight))
                    module.parametrizations.weight.original.requires_grad_(False)
                    self._layers[f"{block_name}.{name}"] = module

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {f"{name}.delta": layer.parametrizations.weight[0].delta for name, layer in self._layers.items()}

    def merge(self) -> nn.Module:
        for layer in self._layers.values():
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
        self._layers = {}
        freeze(self.unet)
        return self.unet
