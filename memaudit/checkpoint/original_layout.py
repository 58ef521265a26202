"""Export a diffusers SD pipeline as one ``.safetensors`` in the original (CompVis/LDM) key layout.

The inverse of diffusers' single-file conversion, for SD 1.x/2.x-style UNets with an integer
``layers_per_block``. memaudit uses it to build single-file twins of models (tests, demo assets) and
to hand remediated models to tools that expect the original layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

_UNET_STATIC = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _rename_head(rest: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        if rest == old or rest.startswith(old + "."):
            return new + rest[len(old) :]
    return rest


def unet_key_to_original(key: str, *, layers_per_block: int, up_blocks_with_attention: set[int]) -> str:
    """Original-layout name of one diffusers UNet parameter."""
    per_block = layers_per_block + 1
    for old, new in _UNET_STATIC.items():
        if key.startswith(old + "."):
            return new + key[len(old) :]
    if match := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        index = 1 + block * per_block + layer
        return (
            f"input_blocks.{index}.0.{_rename_head(rest, _UNET_RESNET)}"
            if kind == "resnets"
            else (f"input_blocks.{index}.1.{rest}")
        )
    if match := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(match[1]) + 1) * per_block}.0.op.{match[2]}"
    if match := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(match[1])}.{_rename_head(match[2], _UNET_RESNET)}"
    if match := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{match[1]}"
    if match := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        index = block * per_block + layer
        return (
            f"output_blocks.{index}.0.{_rename_head(rest, _UNET_RESNET)}"
            if kind == "resnets"
            else (f"output_blocks.{index}.1.{rest}")
        )
    if match := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(match[1])
        slot = 2 if block in up_blocks_with_attention else 1
        return f"output_blocks.{block * per_block + layers_per_block}.{slot}.conv.{match[2]}"
    raise ValueError(f"no original-layout name for UNet parameter {key!r}")


def vae_key_to_original(key: str, *, num_up_blocks: int) -> str:
    """Original-layout name of one diffusers AutoencoderKL parameter."""
    if match := re.fullmatch(r"(encoder|decoder)\.conv_norm_out\.(.+)", key):
        return f"{match[1]}.norm_out.{match[2]}"
    if match := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{match[1]}.block.{match[2]}.{_rename_head(match[3], {'conv_shortcut': 'nin_shortcut'})}"
    if match := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{match[1]}.downsample.conv.{match[2]}"
    if match := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        block = num_up_blocks - 1 - int(match[1])
        return f"decoder.up.{block}.block.{match[2]}.{_rename_head(match[3], {'conv_shortcut': 'nin_shortcut'})}"
    if match := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{num_up_blocks - 1 - int(match[1])}.upsample.conv.{match[2]}"
    if match := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        rest = _rename_head(match[3], {"conv_shortcut": "nin_shortcut"})
        return f"{match[1]}.mid.block_{int(match[2]) + 1}.{rest}"
    if match := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
        return f"{match[1]}.mid.attn_1.{_rename_head(match[2], _VAE_ATTENTION)}"
    if re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out)\..+|(post_)?quant_conv\..+", key):
        return key
    raise ValueError(f"no original-layout name for VAE parameter {key!r}")


def original_state_dict(pipeline) -> dict[str, torch.Tensor]:
    """The pipeline's UNet, VAE and CLIP text encoder weights under original-layout names."""
    unet_config = pipeline.unet.config
    if not isinstance(unet_config.layers_per_block, int):
        raise ValueError("original-layout export needs an integer UNet layers_per_block")
    with_attention = {index for index, kind in enumerate(unet_config.up_block_types) if "CrossAttn" in kind}
    state: dict[str, torch.Tensor] = {}
    for key, tensor in pipeline.unet.state_dict().items():
        name = unet_key_to_original(
            key, layers_per_block=unet_config.layers_per_block, up_blocks_with_attention=with_attention
        )
        state[UNET_PREFIX + name] = tensor
    num_up = len(pipeline.vae.config.up_block_types)
    for key, tensor in pipeline.vae.state_dict().items():
        name = vae_key_to_original(key, num_up_blocks=num_up)
        # The original VAE attention uses 1x1 convolutions where diffusers uses linear layers.
        if ".mid.attn_1." in name and name.endswith(".weight") and tensor.dim() == 2:
            tensor = tensor[:, :, None, None]
        state[VAE_PREFIX + name] = tensor
    for key, tensor in pipeline.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel; the original layout keeps the text_model level.
        name = key if key.startswith(("text_model.", "text_projection")) else "text_model." + key
        state[CLIP_PREFIX + name] = tensor
    return {name: tensor.detach().contiguous().cpu() for name, tensor in state.items()}


def save_original_single_file(pipeline, path: Path) -> Path:
    """Write the pipeline's weights to ``path`` (.safetensors) in the original layout."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: the single-file export is always .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(original_state_dict(pipeline), str(path), metadata={"format": "pt"})
    return path
