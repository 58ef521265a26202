"""Stable Diffusion 3 / 3.5: an MMDiT on a 16-channel KL VAE (with a shift), conditioned on two CLIP
encoders (token states and pooled projections) and T5 (optional: zeros in its place when absent, as
diffusers does); rectified flow."""

from __future__ import annotations

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.flow_shift import set_flow_timesteps


class StableDiffusion3(Denoiser):
    family = "sd3"

    def _encode(self, prompts: list[str]) -> Conditioning:
        tokens, _, pooled, _ = self.pipeline.encode_prompt(
            prompt=prompts,
            prompt_2=None,
            prompt_3=None,
            device=self.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(tokens=tokens, pooled=pooled)

    def forward(self, model_input, timestep, cond: Conditioning):
        step = _batch_timestep(timestep, model_input)
        return self.module(
            hidden_states=model_input, timestep=step, encoder_hidden_states=cond.tokens, pooled_projections=cond.pooled
        ).sample

    def _set_timesteps(self, sampler, num_inference_steps: int, *, latent_side: int) -> None:
        set_flow_timesteps(sampler, num_inference_steps, tokens=(latent_side // self.side_multiple) ** 2)


def _batch_timestep(timestep, model_input):
    """One timestep per sample, as the transformers take it (a number or a 0-d/1-element tensor given)."""
    import torch

    step = torch.as_tensor(timestep, device=model_input.device)
    return step.reshape(-1).expand(model_input.shape[0]).to(model_input.dtype)
