"""Timesteps of a flow sampler as each family's pipeline sets them, resolution-dependent shift included."""

from __future__ import annotations

import numpy as np


def image_shift(tokens: int, config) -> float:
    """The shift mu for ``tokens`` image tokens: linear between (base_image_seq_len, base_shift) and
    (max_image_seq_len, max_shift), as the diffusers pipelines compute it."""
    low, high = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base, top = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (top - base) / (high - low)
    return tokens * slope + base - slope * low


def set_flow_timesteps(sampler, num_inference_steps: int, *, tokens: int, explicit_sigmas: bool = False) -> None:
    """Set ``num_inference_steps`` timesteps; with dynamic shifting the shift follows the image's token
    count. ``explicit_sigmas``: the schedule 1 .. 1/N that Flux's and Lumina's pipelines pass."""
    config = sampler.config
    kwargs = {"mu": image_shift(tokens, config)} if config.get("use_dynamic_shifting", False) else {}
    if explicit_sigmas and not config.get("use_flow_sigmas", False):
        sampler.set_timesteps(sigmas=np.linspace(1.0, 1 / num_inference_steps, num_inference_steps), **kwargs)
    else:
        sampler.set_timesteps(num_inference_steps, **kwargs)
