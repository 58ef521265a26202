"""PixArt-Alpha / PixArt-Sigma: a DiT with cross-attention to T5 token states (with their attention
mask) on a KL VAE's latents; DDPM schedule, epsilon prediction with a learned variance: the network
returns twice the latent channels and the first half is the noise."""

from __future__ import annotations

import torch

from memaudit.denoiser.base import Denoiser
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.sd3 import _batch_timestep


class PixArt(Denoiser):
    family = "pixart"

    def _encode(self, prompts: list[str]) -> Conditioning:
        # PixArt-Sigma reads 300 T5 tokens (checkpoint.families); PixArt-Alpha's pipeline 120.
        default = 120 if type(self.pipeline).__name__ == "PixArtAlphaPipeline" else self.max_sequence_length
        tokens, mask, _, _ = self.pipeline.encode_prompt(
            prompts,
            do_classifier_free_guidance=False,
            device=self.device,
            clean_caption=False,
            max_sequence_length=default,
        )
        return Conditioning(tokens=tokens, mask=mask)

    def forward(self, model_input, timestep, cond: Conditioning):
        transformer = self.module
        added = {"resolution": None, "aspect_ratio": None}
        if getattr(transformer, "use_additional_conditions", False):
            height, width = (side * self.latent_factor for side in model_input.shape[-2:])
            batch, device, dtype = model_input.shape[0], model_input.device, model_input.dtype
            added = {
                "resolution": torch.tensor([[height, width]], device=device, dtype=dtype).expand(batch, -1),
                "aspect_ratio": torch.tensor([[height / width]], device=device, dtype=dtype).expand(batch, -1),
            }
        output = transformer(
            model_input,
            encoder_hidden_states=cond.tokens,
            encoder_attention_mask=cond.mask,
            timestep=_batch_timestep(timestep, model_input),
            added_cond_kwargs=added,
        ).sample
        learned_sigma = output.shape[1] == 2 * model_input.shape[1]
        return output.chunk(2, dim=1)[0] if learned_sigma else output
