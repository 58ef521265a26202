"""Stable Diffusion 1.x/2.x: a UNet on a KL VAE's latents, one text encoder (CLIP, or a BERT-style
encoder as in RadEdit), epsilon or v-prediction on a DDPM schedule."""

from __future__ import annotations

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning


class StableDiffusion(Denoiser):
    family = "sd"

    def _encode(self, prompts: list[str]) -> Conditioning:
        return Conditioning(tokens=clip_states(self.pipeline.tokenizer, self.pipeline.text_encoder, prompts))

    def forward(self, model_input, timestep, cond: Conditioning):
        return self.module(model_input, timestep, encoder_hidden_states=cond.tokens).sample


def clip_states(tokenizer, encoder, prompts: list[str], *, layer: int | None = None):
    """``[P, L, D]`` token states of ``prompts`` padded to the tokenizer's maximum length: the last
    hidden state, or hidden state ``layer`` (SDXL reads the penultimate)."""
    tokens = tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    )
    ids = tokens.input_ids.to(next(encoder.parameters()).device)
    mask = tokens.attention_mask.to(ids.device) if getattr(encoder.config, "use_attention_mask", False) else None
    if layer is None:
        return encoder(ids, attention_mask=mask)[0]
    return encoder(ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
