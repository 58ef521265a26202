"""Cross-attention capture through a diffusers attention processor (no library code is patched).

While ``recording(unet)`` is active, every cross-attention layer (``attn2`` of diffusers' transformer
blocks) computes its output as diffusers' plain ``AttnProcessor`` does and also keeps, per sample, its
attention distribution over text tokens averaged over heads and query positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class CrossAttentionRecorder:
    def __init__(self) -> None:
        self.layers: list[torch.Tensor] = []  # one [B, tokens] per cross-attention layer called

    def __call__(self, attn, hidden_states, *, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is None:
            raise ValueError("the cross-attention recorder was installed on a self-attention layer")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        shape = hidden_states.shape
        if hidden_states.ndim == 4:
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        batch, tokens = encoder_hidden_states.shape[0], encoder_hidden_states.shape[1]
        mask = attn.prepare_attention_mask(attention_mask, tokens, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probabilities = attn.get_attention_scores(query, key, mask)  # [B * heads, queries, tokens]
        self.layers.append(probabilities.float().view(batch, -1, tokens).mean(dim=1).detach().cpu())
        out = attn.to_out[1](attn.to_out[0](attn.batch_to_head_dim(torch.bmm(probabilities, value))))
        if len(shape) == 4:
            out = out.transpose(1, 2).reshape(shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


@contextmanager
def recording(unet) -> Iterator[CrossAttentionRecorder]:
    """Install one recorder on every cross-attention layer of ``unet``; restore the processors after."""
    original = getattr(unet, "attn_processors", {})  # a diffusers UNet's processors by layer name
    if not any(name.endswith("attn2.processor") for name in original):
        raise ValueError(f"this UNet ({type(unet).__name__}) has no cross-attention layers (attn2) to record")
    recorder = CrossAttentionRecorder()
    cross = {
        name: (recorder if name.endswith("attn2.processor") else processor) for name, processor in original.items()
    }
    unet.set_attn_processor(cross)
    try:
        yield recorder
    finally:
        unet.set_attn_processor(original)
