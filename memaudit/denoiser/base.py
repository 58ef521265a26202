"""The one interface every check uses to run a text-to-image diffusion model, whatever its family.

A ``Denoiser`` wraps a loaded diffusers pipeline and offers what the checks need, in one convention:

- prompts -> ``Conditioning`` (``encode_prompts``; ``unconditional`` is what classifier-free guidance
  uses as the other branch in this family's own pipeline);
- ``forward``: the denoiser's output at a model input, in the parameterization the family's sampler
  steps with (epsilon, v or x0 for the DDPM families; the velocity ``e - x0`` for rectified flow;
  PixArt's learned sigma dropped), and ``epsilon``: that output as the noise it stands for, which is
  what every score is defined on (``metrics.parameterization``);
- the family's sampler (``make_sampler``), the training forward process (``add_noise``) and target;
- latents: ``encode_images`` / ``decode`` at the family's scale, shift and downsampling factor.

Latents are always ``[B, C, h, w]``; a family that packs them (Flux) packs inside ``forward``.
Subclasses (one file per family, registered by name in ``denoiser.registry``) fill in the parts that
differ; no check asks which family it runs on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from memaudit.checkpoint.families import BY_NAME, default_latent_side, parameterization, reading_tokenizer
from memaudit.denoiser.conditioning import Conditioning
from memaudit.denoiser.noise_levels import DdpmLevels, FlowLevels, NoiseLevels


class Denoiser(ABC):
    family: ClassVar[str]
    guidance_distilled: ClassVar[bool] = False  # guidance is an input (Flux-dev), not two branches

    def __init__(self, pipeline, *, guidance: float = 3.5) -> None:
        self.pipeline = pipeline
        self.guidance = float(guidance)  # the guidance embedding of a guidance-distilled family
        self.levels: NoiseLevels = FlowLevels(pipeline.scheduler) if self.flow else DdpmLevels(pipeline.scheduler)

    @property
    def flow(self) -> bool:
        return BY_NAME[self.family].flow

    @property
    def module_name(self) -> str:
        return BY_NAME[self.family].module

    # --- what the model is -------------------------------------------------------------------
    @property
    def module(self) -> torch.nn.Module:
        return getattr(self.pipeline, self.module_name)

    @property
    def vae(self) -> torch.nn.Module:
        return self.pipeline.vae

    @property
    def device(self) -> torch.device:
        return self.module.device

    @property
    def dtype(self) -> torch.dtype:
        return self.module.dtype

    @property
    def tokenizer(self):
        """The tokenizer that reads furthest into a caption (``checkpoint.families``)."""
        return reading_tokenizer(self.pipeline)[1]

    @property
    def max_sequence_length(self) -> int | None:
        """The pipeline's default length for its long text encoder (``checkpoint.families``)."""
        return BY_NAME[self.family].text_length

    @property
    def text_max_length(self) -> int:
        """Tokens of a caption the denoiser reads: the pipeline's T5/Gemma length where it sets one (it pads
        and cuts to that length whatever the tokenizer's own maximum), else the tokenizer's (CLIP's 77)."""
        return BY_NAME[self.family].reads(*reading_tokenizer(self.pipeline))

    @property
    def parameterization(self) -> str:
        return parameterization(self.pipeline)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def latent_factor(self) -> int:
        """Image pixels per latent pixel along a side (8 for KL VAEs, 32 for Sana's DC-AE)."""
        return int(self.pipeline.vae_scale_factor)

    @property
    def side_multiple(self) -> int:
        """Latent sides must be multiples of this (a transformer's patch size)."""
        return int(getattr(self.module.config, "patch_size", None) or 1)

    @property
    def default_latent_side(self) -> int:
        return default_latent_side(self.pipeline)

    def latent_side(self, resolution: int | None) -> int:
        """Latent height/width for an image side in pixels (default: the model's own sample size)."""
        if resolution is None:
            return self.default_latent_side
        step = self.latent_factor * self.side_multiple
        if resolution % step:
            raise ValueError(
                f"resolution {resolution} is not a multiple of {step} (the {self.family} VAE's factor "
                f"{self.latent_factor} x the denoiser's patch {self.side_multiple})"
            )
        return resolution // self.latent_factor

    def latent_shape(self, side: int) -> tuple[int, int, int]:
        return (self.latent_channels, side, side)

    @property
    def has_cross_attention(self) -> bool:
        """Whether the network attends to text through cross-attention layers (``attn2``), which the
        attention-entropy detector records; joint attention (SD 3.x, Flux, Lumina 2) has none."""
        processors = getattr(self.module, "attn_processors", {})
        return any(name.endswith("attn2.processor") for name in processors)

    def components(self) -> dict[str, torch.nn.Module]:
        """The networks, by pipeline attribute: denoiser, VAE, the text encoders present."""
        return {name: part for name, part in self.pipeline.components.items() if isinstance(part, torch.nn.Module)}

    # --- text --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts: list[str], *, batch_size: int = 64) -> Conditioning:
        """The conditioning of ``prompts``, ``batch_size`` at a time (rows in order)."""
        parts = [self._encode(prompts[start : start + batch_size]) for start in range(0, len(prompts), batch_size)]
        return Conditioning.cat(parts).to("cpu") if parts else self._encode([""])[[]].to("cpu")

    def unconditional(self) -> Conditioning:
        """The other branch of classifier-free guidance in this family's pipeline: the empty prompt's."""
        return self.encode_prompts([""])

    @abstractmethod
    def _encode(self, prompts: list[str]) -> Conditioning: ...

    # --- one network evaluation ----------------------------------------------------------------
    @abstractmethod
    def forward(self, model_input: torch.Tensor, timestep, cond: Conditioning) -> torch.Tensor:
        """The network's output for a batch, in the sampler's parameterization (see the module doc)."""
        ...

    def scale_input(self, sampler, latents: torch.Tensor, timestep) -> torch.Tensor:
        scale = getattr(sampler, "scale_model_input", None)
        return scale(latents, timestep) if scale is not None else latents

    def outputs(self, sampler, latents, *, timestep, cond: Conditioning, uncond: Conditioning):
        """(conditional, unconditional) outputs for a batch, from one forward pass over 2B samples."""
        model_input = self.scale_input(sampler, torch.cat([latents, latents]), timestep)
        both = Conditioning.cat([cond, uncond.broadcast(len(cond))]).to(self.device, self.dtype)
        return self.forward(model_input, timestep, both).chunk(2)

    def output(self, sampler, latents, *, timestep, cond: Conditioning) -> torch.Tensor:
        """The conditional output alone (no guidance)."""
        return self.forward(self.scale_input(sampler, latents, timestep), timestep, cond.to(self.device, self.dtype))

    def epsilon(self, sampler, output: torch.Tensor, *, latents: torch.Tensor, timestep) -> torch.Tensor:
        """The noise an ``output`` at the sampler's ``timestep`` stands for (``latents``: unscaled)."""
        model_input = self.scale_input(sampler, latents, timestep)
        return self.levels.sampler_epsilon(sampler, output, model_input=model_input, timestep=timestep)

    def predict_noise(self, sampler, latents, *, timestep, cond: Conditioning, uncond: Conditioning):
        """(eps_conditional, eps_unconditional) for a batch, whatever the network predicts."""
        outputs = self.outputs(sampler, latents, timestep=timestep, cond=cond, uncond=uncond)
        return tuple(self.epsilon(sampler, output, latents=latents, timestep=timestep) for output in outputs)

    def guided_output(self, sampler, latents, *, timestep, cond: Conditioning, uncond: Conditioning, scale: float):
        """What the sampler steps with under guidance ``scale`` (see ``mix``), evaluating only the branches
        that need evaluating."""
        if self.guidance_distilled or scale <= 1.0:
            return self.output(sampler, latents, timestep=timestep, cond=cond)
        return self.mix(*self.outputs(sampler, latents, timestep=timestep, cond=cond, uncond=uncond), scale=scale)

    def mix(self, out_cond: torch.Tensor, out_uncond: torch.Tensor, *, scale: float) -> torch.Tensor:
        """Classifier-free guidance, u + scale (c - u), as the family's pipeline applies it; a
        guidance-distilled family steps with the conditional output (its guidance is an input)."""
        if self.guidance_distilled or scale <= 1.0:
            return out_cond
        return out_uncond + scale * (out_cond - out_uncond)

    # --- the sampler ---------------------------------------------------------------------------
    def make_sampler(self, kind: str, num_inference_steps: int, *, latent_side: int):
        """A fresh scheduler with its timesteps set: ``ddim`` (the family's deterministic sampler: DDIM
        for a DDPM schedule, flow-matching Euler for rectified flow) or the checkpoint's own class."""
        sampler = self.levels.sampler(kind)
        self._set_timesteps(sampler, num_inference_steps, latent_side=latent_side)
        return sampler

    def _set_timesteps(self, sampler, num_inference_steps: int, *, latent_side: int) -> None:
        sampler.set_timesteps(num_inference_steps)

    def start_latents(self, sampler, noise: torch.Tensor) -> torch.Tensor:
        return noise.to(self.device, self.dtype) * getattr(sampler, "init_noise_sigma", 1.0)

    # --- the training schedule (membership, fine-tuning) ----------------------------------------
    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.levels.add_noise(clean, noise, timesteps)

    def epsilon_at(self, output: torch.Tensor, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The noise an output at training ``timesteps`` ([B] or one) stands for."""
        return self.levels.train_epsilon(output, noisy, timesteps, prediction_type=self.parameterization)

    # --- latents -------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` images in [0, 1] -> scaled latents (the posterior mean: no sampling)."""
        vae = self.vae
        encoded = vae.encode(images.to(vae.device, vae.dtype) * 2 - 1)
        latents = encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latent
        return ((latents.float() - self._shift) * self._scale).cpu()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> ``[B, 3, H, W]`` float32 images in [0, 1] on the CPU."""
        vae = self.vae
        images = vae.decode((latents.to(vae.device, vae.dtype) / self._scale) + self._shift).sample
        return (images.float() / 2 + 0.5).clamp(0, 1).cpu()

    @property
    def _scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def _shift(self) -> float:
        return float(getattr(self.vae.config, "shift_factor", None) or 0.0)
