"""Lumina-Image 2.0: a DiT conditioned on Gemma 2 token states (after the pipeline's system prompt)
with their mask; rectified flow in the opposite time direction: the network is told 1 - s and
predicts x0 - e, which ``forward`` turns into the velocity e - x0 at s that the flow sampler steps with."""

from __future__ import annotations

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.flow_shift import set_flow_timesteps
from memaudit.denoiser.sd3 import _batch_timestep


class Lumina2(Denoiser):
    family = "lumina2"

    def _encode(self, prompts: list[str]) -> Conditioning:
        tokens, mask, _, _ = self.pipeline.encode_prompt(
            prompts,
            do_classifier_free_guidance=False,
            device=self.device,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(tokens=tokens, mask=mask)

    def unconditional(self) -> Conditioning:
        """The pipeline's negative branch: the empty prompt without the system prompt."""
        tokens, mask = self.pipeline._get_gemma_prompt_embeds(
            prompt=[""], device=self.device, max_sequence_length=self.max_sequence_length
        )
        return Conditioning(tokens=tokens, mask=mask).to("cpu")

    def mix(self, out_cond, out_uncond, *, scale: float):
        """Guidance as Lumina 2's pipeline applies it by default: u + scale (c - u), renormalised to the
        conditional output's norm along the last axis."""
        mixed = super().mix(out_cond, out_uncond, scale=scale)
        if scale <= 1.0:
            return mixed
        return mixed * (out_cond.norm(dim=-1, keepdim=True) / mixed.norm(dim=-1, keepdim=True))

    def forward(self, model_input, timestep, cond: Conditioning):
        reversed_time = 1 - _batch_timestep(timestep, model_input) / self.levels.num_train_timesteps
        output = self.module(
            hidden_states=model_input,
            timestep=reversed_time,
            encoder_hidden_states=cond.tokens,
            encoder_attention_mask=cond.mask,
        ).sample
        return -output

    def _set_timesteps(self, sampler, num_inference_steps: int, *, latent_side: int) -> None:
        set_flow_timesteps(
            sampler, num_inference_steps, tokens=(latent_side // self.side_multiple) ** 2, explicit_sigmas=True
        )
