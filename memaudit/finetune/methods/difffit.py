"""`difffit`: DiffFit (Xie et al.). In each selected block, per-channel scale factors on the outputs
of q, k, v and out of both attentions, on the attn1, attn2 and feed-forward residual branches, plus
every bias. Scales start at 1, so the model starts exactly where it was; merging folds each scale
into the linear layer whose output it multiplies.
"""

from __future__ import annotations

import torch
from torch import nn

from memaudit.finetune.mask import BlockMask
from memaudit.finetune.methods.base import attention_modules, block_modules, freeze

PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")


class ChannelScale(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))

    def __call__(self, module, inputs, output):  # a forward hook
        if isinstance(output, tuple):  # joint attention (SD 3.x, Flux): the image stream comes first
            return (output[0] * self.scale, *output[1:])
        return output * self.scale


def _linear(module: nn.Module, path: str) -> nn.Linear | None:
    try:
        found = module.get_submodule(path)
    except AttributeError:
        return None
    return found if isinstance(found, nn.Linear) else None


def _last_linear(module: nn.Module) -> nn.Linear | None:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


class DiffFit:
    name = "difffit"

    def __init__(self, unet: nn.Module, mask: BlockMask) -> None:
        self.unet, self.mask = unet, mask
        freeze(unet)
        self.scales = nn.ModuleDict()
        self._targets: dict[str, nn.Linear] = {}  # scale key -> linear layer its output multiplies
        self._hooks = []
        self._biases: dict[str, nn.Parameter] = {}
        everything = dict(unet.named_modules())
        for path, attention in attention_modules(unet, mask).items():
            for projection in PROJECTIONS:  # a single-stream attention (Flux) has no output projection
                layer = _linear(attention, projection)
                if layer is not None:
                    self._add(f"{path}.{projection}", hooked=layer, folds_into=layer, channels=layer.out_features)
            out = _linear(attention, "to_out.0")
            if out is not None:
                self._add(f"{path}.branch", hooked=attention, folds_into=out, channels=out.out_features)
        for unit, module in block_modules(unet, mask).items():
            feed_forward = everything.get(f"{unit}.ff")
            folds_into = _last_linear(feed_forward) if feed_forward is not None else None
            if folds_into is not None:  # a whole block: its feed-forward branch too (Sana's is convolutional)
                self._add(
                    f"{unit}.ff.branch", hooked=feed_forward, folds_into=folds_into, channels=folds_into.out_features
                )
            for name, parameter in module.named_parameters():
                if name.endswith("bias"):
                    parameter.requires_grad_(True)
                    self._biases[f"{unit}.{name}"] = parameter
        device = next(unet.parameters()).device
        self.scales.to(device)

    def _add(self, key: str, *, hooked: nn.Module, folds_into: nn.Linear, channels: int) -> None:
        scale = ChannelScale(channels)
        self.scales[key.replace(".", "/")] = scale
        self._targets[key] = folds_into
        self._hooks.append(hooked.register_forward_hook(scale))

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        parameters = {f"{key.replace('/', '.')}.scale": module.scale for key, module in self.scales.items()}
        return parameters | self._biases

    @torch.no_grad()
    def merge(self) -> nn.Module:
        for hook in self._hooks:
            hook.remove()
        for key, layer in self._targets.items():
            scale = self.scales[key.replace(".", "/")].scale
            layer.weight.mul_(scale[:, None])
            if layer.bias is not None:
                layer.bias.mul_(scale)
        self._hooks, self._targets, self.scales = [], {}, nn.ModuleDict()
        freeze(self.unet)
        return self.unet
