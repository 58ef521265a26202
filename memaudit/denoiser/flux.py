"""Flux.1: an MMDiT on a 16-channel KL VAE (with a shift) whose latents it reads packed in 2x2
patches, conditioned on T5 token states and a pooled CLIP embedding; rectified flow. Flux-dev is
guidance-distilled: the guidance scale is an input embedding, and there is no second branch. Its
"unconditional" output, where a check needs one, is the empty prompt's at the same guidance input."""

from __future__ import annotations

import torch

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.flow_shift import set_flow_timesteps
from memaudit.denoiser.sd3 import _batch_timestep


class Flux(Denoiser):
    family = "flux"

    @property
    def guidance_distilled(self) -> bool:  # Flux-dev and its fine-tunes; Flux-schnell has no guidance input
        return bool(self.module.config.guidance_embeds)

    @property
    def side_multiple(self) -> int:
        return 2  # 2x2 packing

    def _encode(self, prompts: list[str]) -> Conditioning:
        tokens, pooled, _ = self.pipeline.encode_prompt(
            prompt=prompts,
            prompt_2=None,
            device=self.device,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(tokens=tokens, pooled=pooled)

    def forward(self, model_input, timestep, cond: Conditioning):
        from diffusers import FluxPipeline

        batch, channels, height, width = model_input.shape
        packed = FluxPipeline._pack_latents(model_input, batch, channels, height, width)
        image_ids = FluxPipeline._prepare_latent_image_ids(
            batch, height // 2, width // 2, model_input.device, model_input.dtype
        )
        text_ids = torch.zeros(cond.tokens.shape[1], 3, device=model_input.device, dtype=model_input.dtype)
        guidance = None
        if self.guidance_distilled:
            guidance = torch.full((batch,), self.guidance, device=model_input.device, dtype=model_input.dtype)
        output = self.module(
            hidden_states=packed,
            timestep=_batch_timestep(timestep, model_input) / 1000,
            guidance=guidance,
            pooled_projections=cond.pooled,
            encoder_hidden_states=cond.tokens,
            txt_ids=text_ids,
            img_ids=image_ids,
        ).sample
        return FluxPipeline._unpack_latents(
            output, height * self.latent_factor, width * self.latent_factor, self.latent_factor
        )

    def _set_timesteps(self, sampler, num_inference_steps: int, *, latent_side: int) -> None:
        set_flow_timesteps(sampler, num_inference_steps, tokens=(latent_side // 2) ** 2, explicit_sigmas=True)
