"""LoRA files for tests: one random adapter over a tiny UNet, written in the diffusers/PEFT key layout
and in the kohya-ss layout (module path with underscores, lora_down/lora_up, alpha per module)."""

from __future__ import annotations

from pathlib import Path

import torch


def write_lora(pipeline, folder: Path, *, seed: int = 0, rank: int = 4) -> tuple[Path, Path]:
    """(diffusers file, kohya file) of one adapter on the attention projections of ``pipeline``'s UNet (SD
    or SDXL); alpha equals the rank (scale 1), which both layouts state. ``pipeline`` is left unchanged."""
    import copy

    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    unet = copy.deepcopy(pipeline.unet)
    targets = ["to_q", "to_k", "to_v", "to_out.0"]
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights="gaussian"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder.mkdir(parents=True, exist_ok=True)
    type(pipeline).save_lora_weights(folder, unet_lora_layers=layers, safe_serialization=True)
    diffusers_file = folder / "pytorch_lora_weights.safetensors"
    kohya = {}
    for key, tensor in load_file(diffusers_file).items():
        module, kind = key.rsplit(".lora.", 1)  # unet.<path>.lora.down.weight
        name = "lora_unet_" + module.removeprefix("unet.").replace(".", "_")
        kohya[f"{name}.lora_{kind.split('.')[0]}.weight"] = tensor
        kohya[f"{name}.alpha"] = torch.tensor(float(rank))
    kohya_file = folder / "kohya.safetensors"
    save_file(kohya, kohya_file)
    return diffusers_file, kohya_file


def write_network_lora(pipeline, module: str, folder: Path, *, seed: int = 0) -> tuple[Path, str, torch.Tensor]:
    """A diffusers-layout adapter on the ``to_q``/``to_k`` projections of the pipeline's ``module`` (its UNet
    or transformer), saved with the family's own ``save_lora_weights``; (file, one adapted weight's
    state-dict key, the change B A that fusing at scale 1 adds to it)."""
    import copy

    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    network = copy.deepcopy(getattr(pipeline, module))
    network.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k"], init_lora_weights="gaussian"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    name, layer = next((n, m) for n, m in network.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A)
    delta = (layer.lora_B["default"].weight @ layer.lora_A["default"].weight).detach()
    layers = get_peft_model_state_dict(network)
    if module == "unet":
        layers = convert_state_dict_to_diffusers(layers)
    type(pipeline).save_lora_weights(folder, **{f"{module}_lora_layers": layers}, safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors", f"{name}.weight", delta
