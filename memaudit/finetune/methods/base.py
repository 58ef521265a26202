"""What every PEFT method provides: apply a mask to a UNet, list what trains, save it, merge it away."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from memaudit.finetune.mask import ATTENTIONS, BlockMask


class AppliedMethod(Protocol):
    name: str
    mask: BlockMask

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Every parameter the optimizer updates, by a stable name."""
        ...

    def merge(self) -> nn.Module:
        """Fold what was trained into plain diffusers layers; returns the (now plain) UNet."""
        ...


def freeze(module: nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def block_modules(unet: nn.Module, mask: BlockMask) -> dict[str, nn.Module]:
    """The selected units (transformer blocks or attentions) by module path."""
    modules = dict(unet.named_modules())
    return {name: modules[name] for name in mask.selected}


def attention_modules(unet: nn.Module, mask: BlockMask) -> dict[str, nn.Module]:
    """The attentions (attn1, attn2) the mask selects: all of a selected block's, or the selected ones."""
    modules = dict(unet.named_modules())
    found = {}
    for unit in mask.selected:
        if unit.rsplit(".", 1)[-1] in ATTENTIONS:
            found[unit] = modules[unit]
            continue
        for attention in ATTENTIONS:
            if modules.get(f"{unit}.{attention}") is not None:
                found[f"{unit}.{attention}"] = modules[f"{unit}.{attention}"]
    return found


def trainable_count(method: AppliedMethod) -> int:
    return sum(parameter.numel() for parameter in method.trainable_parameters().values())


def trained_state(method: AppliedMethod) -> dict[str, torch.Tensor]:
    """Only what the method trains, detached: what its adapter file holds."""
    return {name: parameter.detach().cpu().contiguous() for name, parameter in method.trainable_parameters().items()}


def load_trained_state(method: AppliedMethod, state: dict[str, torch.Tensor]) -> None:
    parameters = method.trainable_parameters()
    missing = sorted(set(parameters) - set(state))
    unexpected = sorted(set(state) - set(parameters))
    if missing or unexpected:
        raise ValueError(
            f"adapter does not fit this method and mask (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(state[name])
