"""Stable Diffusion XL: a UNet reading two CLIP encoders' penultimate states side by side, plus the
second encoder's pooled projection and six "time ids" (original size, crop corner, target size) as
added conditions; DDPM schedule, epsilon (or v) prediction."""

from __future__ import annotations

import torch

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.sd import clip_states


class StableDiffusionXL(Denoiser):
    family = "sdxl"

    def _encode(self, prompts: list[str]) -> Conditioning:
        pipeline = self.pipeline
        first = clip_states(pipeline.tokenizer, pipeline.text_encoder, prompts, layer=-2)
        tokenizer, encoder = pipeline.tokenizer_2, pipeline.text_encoder_2
        ids = tokenizer(
            prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(next(encoder.parameters()).device)
        second = encoder(ids, output_hidden_states=True)
        return Conditioning(tokens=torch.cat([first, second.hidden_states[-2]], dim=-1), pooled=second[0])

    def unconditional(self) -> Conditioning:
        """SDXL's pipelines use zeros, not the empty prompt's states, when told to (the base model's
        ``force_zeros_for_empty_prompt``), for the unconditional branch."""
        empty = self.encode_prompts([""])
        if self.pipeline.config.get("force_zeros_for_empty_prompt", False):
            return empty.map_float(torch.zeros_like)
        return empty

    def forward(self, model_input, timestep, cond: Conditioning):
        side = [model_input.shape[-2] * self.latent_factor, model_input.shape[-1] * self.latent_factor]
        time_ids = torch.tensor([[*side, 0, 0, *side]], device=model_input.device, dtype=model_input.dtype)
        added = {"text_embeds": cond.pooled, "time_ids": time_ids.expand(model_input.shape[0], -1)}
        return self.module(model_input, timestep, encoder_hidden_states=cond.tokens, added_cond_kwargs=added).sample
