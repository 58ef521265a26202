"""`lora`: low-rank adapters (the peft library) on q, k, v and out of both attentions of each
selected block
(or of the selected attentions). B starts at zero, so the model starts exactly where it was; merging adds B A into
the base weights and removes the adapter layers.
"""

from __future__ import annotations

from torch import nn

from memaudit.finetune.mask import BlockMask
from memaudit.finetune.methods.base import attention_modules, freeze

PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
LORA_FILE = "lora.safetensors"


class LoRA:
    name = "lora"

    def __init__(self, unet: nn.Module, mask: BlockMask, *, rank: int = 4) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        if rank < 1:
            raise ValueError(f"`rank` must be at least 1, got {rank}")
        self.unet, self.mask, self.rank = unet, mask, rank
        freeze(unet)
        targets = [f"{path}.{projection}" for path in attention_modules(unet, mask) for projection in PROJECTIONS]
        if targets:
            config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, lora_dropout=0.0)
            inject_adapter_in_model(config, unet)
        self._parameters = {name: p for name, p in unet.named_parameters() if "lora_" in name}
        for parameter in self._parameters.values():
            parameter.requires_grad_(True)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return self._parameters

    def merge(self) -> nn.Module:
        from peft.tuners.lora import LoraLayer

        for name, module in list(self.unet.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent_name, _, child = name.rpartition(".")
                parent = self.unet.get_submodule(parent_name) if parent_name else self.unet
                setattr(parent, child, module.get_base_layer())
        self._parameters = {}
        freeze(self.unet)
        return self.unet


def save_lora_file(pipeline, network: str, path) -> bool:
    """The trained (unmerged) adapter of ``pipeline``'s ``network`` (``unet`` or ``transformer``) as one
    diffusers LoRA file, through the family's own ``save_lora_weights``; alpha equals the rank (scale 1),
    as trained, so loading it at scale 1 gives the merged model. False where the family's diffusers
    pipeline has no LoRA format (PixArt), or the mask selected nothing: nothing is written."""
    from peft.utils import get_peft_model_state_dict

    if not hasattr(type(pipeline), "save_lora_weights") or not hasattr(getattr(pipeline, network), "peft_config"):
        return False  # no LoRA format for this family, or an empty mask: no adapter layers to write
    layers = get_peft_model_state_dict(getattr(pipeline, network))
    if network == "unet":  # the UNet families' loaders read the diffusers key names
        from diffusers.utils import convert_state_dict_to_diffusers

        layers = convert_state_dict_to_diffusers(layers)
    type(pipeline).save_lora_weights(
        path.parent, weight_name=path.name, safe_serialization=True, **{f"{network}_lora_layers": layers}
    )
    return True
