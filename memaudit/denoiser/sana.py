"""Sana: a linear-attention DiT on a deep-compression autoencoder (DC-AE: 32 channels at 32x
downsampling), conditioned on Gemma 2 token states with their mask; rectified flow (diffusers' Sana
samples with a flow DPM-Solver; its deterministic "ddim" sampler here is flow-matching Euler)."""

from __future__ import annotations

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.sd3 import _batch_timestep


class Sana(Denoiser):
    family = "sana"

    def _encode(self, prompts: list[str]) -> Conditioning:
        # The caption alone: without the pipeline's optional prompt-enhancing instruction, which is not
        # part of what a fine-tune on captions was trained with.
        tokens, mask, _, _ = self.pipeline.encode_prompt(
            prompts,
            do_classifier_free_guidance=False,
            device=self.device,
            clean_caption=False,
            max_sequence_length=self.max_sequence_length,
            complex_human_instruction=None,
        )
        return Conditioning(tokens=tokens, mask=mask)

    def forward(self, model_input, timestep, cond: Conditioning):
        transformer = self.module
        step = _batch_timestep(timestep, model_input) * transformer.config.get("timestep_scale", 1.0)
        return transformer(
            model_input, encoder_hidden_states=cond.tokens, encoder_attention_mask=cond.mask, timestep=step
        ).sample
